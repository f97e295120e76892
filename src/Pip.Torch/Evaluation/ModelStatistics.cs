using Pip.Evaluation;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Evaluation;

/// <summary>Settings of the decoding benchmark.</summary>
public sealed record DecodeBenchmarkOptions
{
    /// <summary>Tokens generated per run (end-of-sequence tokens do not stop a run). Default 128.</summary>
    public int NewTokens { get; init; } = 128;

    /// <summary>Runs made first and left out of the measurement. Default 2.</summary>
    public int WarmupRuns { get; init; } = 2;

    /// <summary>Runs measured; the statistics are their medians. Default 5.</summary>
    public int MeasuredRuns { get; init; } = 5;
}

/// <summary>A model's size and speed, as in a pruning paper's comparison table.</summary>
/// <param name="ParameterCount">Distinct parameters (a tied embedding and head counted once).</param>
/// <param name="WeightBytes">Bytes of the parameters in their own types.</param>
/// <param name="Decoding">The decoding benchmark, or null where it was not run.</param>
public sealed record ModelStatistics(long ParameterCount, long WeightBytes, DecodeTimingResult? Decoding)
{
    /// <summary>The weight memory in GiB (2^30 bytes).</summary>
    public double WeightGiB => WeightBytes / (double)(1L << 30);

    /// <summary>The median time per output token in milliseconds (see <see cref="DecodeRun.TimePerOutputToken"/>), or null.</summary>
    public double? TimePerOutputTokenMs => Decoding?.MedianTimePerOutputToken * 1000;
}

/// <summary>Measures parameter count, weight memory and greedy decoding speed (KV cache, batch of one).</summary>
public static class ModelStatisticsMeter
{
    /// <summary>The bytes of a model's distinct parameters, each in its own type.</summary>
    /// <param name="model">The model.</param>
    /// <returns>The bytes.</returns>
    public static long WeightBytes(ICausalLMModule model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.parameters().Sum(p => p.numel() * p.ElementSize);
    }

    /// <summary>Size statistics without the decoding benchmark.</summary>
    /// <param name="model">The model.</param>
    /// <returns>The statistics (<see cref="ModelStatistics.Decoding"/> null).</returns>
    public static ModelStatistics Size(ICausalLMModule model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new ModelStatistics(model.CountParameters().Total, WeightBytes(model), null);
    }

    /// <summary>Size statistics and the decoding benchmark.</summary>
    /// <param name="model">The model.</param>
    /// <param name="prompt">The prompt's token ids (at least one).</param>
    /// <param name="options">The benchmark settings, or null for the defaults (128 tokens, 2 warm-up runs, 5 measured).</param>
    /// <param name="clock">The clock, or null for the system's.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The statistics.</returns>
    public static ModelStatistics Measure(ICausalLMModule model, IReadOnlyList<int> prompt, DecodeBenchmarkOptions? options = null,
        TimeProvider? clock = null, CancellationToken cancellationToken = default)
    {
        var size = Size(model);
        return size with { Decoding = MeasureDecoding(model, prompt, options, clock, cancellationToken) };
    }

    /// <summary>Size statistics and the decoding benchmark for a loaded model, the prompt given as text.</summary>
    /// <param name="model">The model; it must have a tokenizer.</param>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="options">The benchmark settings, or null for the defaults.</param>
    /// <param name="clock">The clock, or null for the system's.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The statistics.</returns>
    public static ModelStatistics Measure(TorchCausalLM model, string prompt, DecodeBenchmarkOptions? options = null,
        TimeProvider? clock = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        return Measure(model.Model, model.Tokenize(prompt), options, clock, cancellationToken);
    }

    /// <summary>
    /// Times greedy decoding with a KV cache: <see cref="DecodeBenchmarkOptions.WarmupRuns"/> unmeasured runs, then
    /// <see cref="DecodeBenchmarkOptions.MeasuredRuns"/> runs of exactly <see cref="DecodeBenchmarkOptions.NewTokens"/>
    /// tokens each, every token timestamped once its id is on the host.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="prompt">The prompt's token ids (at least one).</param>
    /// <param name="options">The benchmark settings, or null for the defaults.</param>
    /// <param name="clock">The clock, or null for the system's.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The timings.</returns>
    public static DecodeTimingResult MeasureDecoding(ICausalLMModule model, IReadOnlyList<int> prompt, DecodeBenchmarkOptions? options = null,
        TimeProvider? clock = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        options ??= new DecodeBenchmarkOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.NewTokens, 1, nameof(options));
        if (prompt.Count == 0) throw new ArgumentException("The prompt must hold at least one token.", nameof(prompt));
        var vocab = model.Config.VocabSize;
        if (prompt.Any(t => t < 0 || t >= vocab)) throw new ArgumentException($"The prompt holds a token outside the vocabulary [0, {vocab}).", nameof(prompt));
        return DecodeTiming.Measure(onToken => GreedyDecode(model, prompt, options.NewTokens, onToken, cancellationToken),
            options.WarmupRuns, options.MeasuredRuns, clock, cancellationToken);
    }

    /// <summary>Greedy decoding with a KV cache of exactly <paramref name="newTokens"/> tokens, calling back after each.</summary>
    internal static int[] GreedyDecode(ICausalLMModule model, IReadOnlyList<int> prompt, int newTokens, Action? onToken, CancellationToken cancellationToken)
    {
        var generated = new int[newTokens];
        using var noGrad = no_grad();
        using var cache = new KvCache(model.Layers.Count);
        var next = prompt.Select(t => (long)t).ToArray();
        for (var i = 0; i < newTokens; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var ids = tensor(next, new long[] { 1, next.Length }, dtype: ScalarType.Int64, device: model.Device);
            using var output = model.call(new CausalLMInput(ids) { Cache = cache });
            generated[i] = (int)output.Logits[0, -1].argmax().item<long>();
            onToken?.Invoke();
            next = [generated[i]];
        }
        return generated;
    }
}
