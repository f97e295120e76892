using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>Greedy text generation (batch of one) for an <see cref="ICausalLMModule"/>.</summary>
public static class Generation
{
    /// <summary>
    /// Greedy decoding with a key/value cache: the prompt is run once, then one token per step. Stops after
    /// <paramref name="maxNewTokens"/> tokens or right after producing <paramref name="eosId"/> (which is included).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="prompt">The prompt token ids (at least one).</param>
    /// <param name="maxNewTokens">The most tokens to generate.</param>
    /// <param name="eosId">The end-of-sequence id, or null.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The generated token ids (without the prompt).</returns>
    public static int[] Generate(this ICausalLMModule model, IReadOnlyList<int> prompt, int maxNewTokens, int? eosId = null, CancellationToken cancellationToken = default)
    {
        Check(model, prompt, maxNewTokens);
        var generated = new List<int>(maxNewTokens);
        if (maxNewTokens == 0) return [];
        using var noGrad = no_grad();
        using var cache = new KvCache(model.Layers.Count);
        IReadOnlyList<int> next = prompt;
        while (generated.Count < maxNewTokens)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var ids = Ids(next, model.Device);
            using var output = model.call(new CausalLMInput(ids) { Cache = cache });
            var token = ArgmaxLast(output.Logits);
            generated.Add(token);
            if (token == eosId) break;
            next = [token];
        }
        return generated.ToArray();
    }

    /// <summary>
    /// Greedy decoding without a cache: the whole sequence is run again at every step. Slow; the reference for
    /// <see cref="Generate"/>.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="prompt">The prompt token ids (at least one).</param>
    /// <param name="maxNewTokens">The most tokens to generate.</param>
    /// <param name="eosId">The end-of-sequence id, or null.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The generated token ids (without the prompt).</returns>
    public static int[] GenerateWithoutCache(this ICausalLMModule model, IReadOnlyList<int> prompt, int maxNewTokens, int? eosId = null, CancellationToken cancellationToken = default)
    {
        Check(model, prompt, maxNewTokens);
        var sequence = new List<int>(prompt);
        var generated = new List<int>(maxNewTokens);
        using var noGrad = no_grad();
        while (generated.Count < maxNewTokens)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var output = model.call(new CausalLMInput(Ids(sequence, model.Device)));
            var token = ArgmaxLast(output.Logits);
            generated.Add(token);
            sequence.Add(token);
            if (token == eosId) break;
        }
        return generated.ToArray();
    }

    private static void Check(ICausalLMModule model, IReadOnlyList<int> prompt, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("The prompt must hold at least one token.", nameof(prompt));
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        var vocab = model.Config.VocabSize;
        for (var i = 0; i < prompt.Count; i++)
        {
            if (prompt[i] < 0 || prompt[i] >= vocab)
                throw new ArgumentOutOfRangeException(nameof(prompt), $"Prompt token {i} is {prompt[i]}, outside the vocabulary [0, {vocab}).");
        }
    }

    private static Tensor Ids(IReadOnlyList<int> tokens, Device device)
    {
        var data = new long[tokens.Count];
        for (var i = 0; i < data.Length; i++) data[i] = tokens[i];
        return tensor(data, new long[] { 1, data.Length }, dtype: ScalarType.Int64, device: device);
    }

    private static int ArgmaxLast(Tensor logits) =>
        (int)logits[0, -1].to(ScalarType.Float32).argmax().item<long>();
}
