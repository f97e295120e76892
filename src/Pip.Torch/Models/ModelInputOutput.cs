using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>The input of a causal language-model forward pass.</summary>
public sealed class CausalLMInput
{
    /// <summary>Creates an input.</summary>
    /// <param name="inputIds">Token ids, int64 [batch, seq], on the model's device.</param>
    public CausalLMInput(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        InputIds = inputIds;
    }

    /// <summary>Token ids, int64 [batch, seq].</summary>
    public Tensor InputIds { get; }

    /// <summary>Positions [batch, seq]; null for cache.Length … cache.Length+seq-1.</summary>
    public Tensor? PositionIds { get; init; }

    /// <summary>A key/value cache to read and extend, or null. Sequences in a batch must have equal lengths (there is no padding mask).</summary>
    public KvCache? Cache { get; init; }

    /// <summary>
    /// A padding mask [batch, cached + seq] (1 for real tokens, 0 for pads; any numeric type), or null for none.
    /// Supported by <see cref="OptForCausalLM"/> (it also derives the positions from it, as transformers does, so
    /// left padding works); <see cref="LlamaForCausalLM"/> refuses it.
    /// </summary>
    public Tensor? AttentionMask { get; init; }

    /// <summary>Whether to return the hidden state entering every layer and the one leaving the last layer.</summary>
    public bool OutputHiddenStates { get; init; }
}

/// <summary>The output of the decoder stack (<see cref="LlamaModel"/>). Disposing it frees its tensors.</summary>
public sealed class DecoderOutput : IDisposable
{
    /// <summary>Creates an output.</summary>
    /// <param name="lastHiddenState">The final-norm output [batch, seq, hidden].</param>
    /// <param name="hiddenStates">The per-layer hidden states, or null.</param>
    public DecoderOutput(Tensor lastHiddenState, IReadOnlyList<Tensor>? hiddenStates)
    {
        LastHiddenState = lastHiddenState;
        HiddenStates = hiddenStates;
    }

    /// <summary>The output of the final norm [batch, seq, hidden].</summary>
    public Tensor LastHiddenState { get; }

    /// <summary>
    /// When requested: num_layers + 1 tensors [batch, seq, hidden]; entry i is the input of layer i and the last entry
    /// is the output of the last layer <b>before</b> the final norm (Hugging Face applies the norm to its last entry).
    /// </summary>
    public IReadOnlyList<Tensor>? HiddenStates { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        LastHiddenState.Dispose();
        if (HiddenStates is not null)
            foreach (var t in HiddenStates) t.Dispose();
    }
}

/// <summary>The output of a causal language-model forward pass. Disposing it frees its tensors (not the cache).</summary>
public sealed class CausalLMOutput : IDisposable
{
    /// <summary>Creates an output.</summary>
    /// <param name="logits">Logits [batch, seq, vocab] in the model's type.</param>
    /// <param name="hiddenStates">The per-layer hidden states, or null.</param>
    /// <param name="cache">The cache that was used, or null.</param>
    public CausalLMOutput(Tensor logits, IReadOnlyList<Tensor>? hiddenStates, KvCache? cache)
    {
        Logits = logits;
        HiddenStates = hiddenStates;
        Cache = cache;
    }

    /// <summary>Logits [batch, seq, vocab] in the model's type.</summary>
    public Tensor Logits { get; }

    /// <summary>See <see cref="DecoderOutput.HiddenStates"/>.</summary>
    public IReadOnlyList<Tensor>? HiddenStates { get; }

    /// <summary>The cache passed in the input (now extended), or null.</summary>
    public KvCache? Cache { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Logits.Dispose();
        if (HiddenStates is not null)
            foreach (var t in HiddenStates) t.Dispose();
    }
}
