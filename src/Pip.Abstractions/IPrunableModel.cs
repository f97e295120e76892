namespace Pip;

/// <summary>A decoder-only language model seen by pruning: a stack of removable decoder layers.</summary>
/// <remarks>
/// <para>Backends (Pip.Torch) implement it over their own tensors; metrics that need the backend's tensors cast it to
/// the backend's type and say so in their documentation.</para>
/// <para>Ownership: whoever loaded the model owns it and disposes it; pruning mutates it in place
/// (<see cref="RemoveLayers"/>), so work on a loaded copy, never on weights you still need unchanged.</para>
/// <para>Thread-safety: not thread-safe; one pipeline uses a model at a time.</para>
/// </remarks>
public interface IPrunableModel
{
    /// <summary>The architecture name, as in a Hugging Face config (<c>LlamaForCausalLM</c>, ...).</summary>
    string Architecture { get; }

    /// <summary>Current number of decoder layers.</summary>
    int LayerCount { get; }

    /// <summary>Current number of parameters, embeddings and head included (a tied head counted once).</summary>
    long ParameterCount { get; }

    /// <summary>For each current layer, its index in the model as it was first loaded.</summary>
    IReadOnlyList<int> OriginalLayerIndices { get; }

    /// <summary>Number of parameters of the current layer <paramref name="layer"/>.</summary>
    /// <param name="layer">Current layer index.</param>
    long GetLayerParameterCount(int layer);

    /// <summary>Token ids of a text as the model's tokenizer makes them, beginning-of-sequence token included where the model's configuration asks for it.</summary>
    /// <param name="text">The text.</param>
    IReadOnlyList<int> Tokenize(string text);

    /// <summary>Mean next-token negative log-likelihood (nats) of sequences of token ids, optionally as if some layers were absent.</summary>
    /// <param name="sequences">Token id sequences; each is scored on its own.</param>
    /// <param name="skipLayers">Current layer indices to bypass (their input is passed on unchanged), or null.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default);

    /// <summary>Removes whole decoder layers; the remaining ones are renumbered from 0.</summary>
    /// <param name="layers">Current layer indices to remove.</param>
    void RemoveLayers(IReadOnlyCollection<int> layers);
}

/// <summary>
/// A model that computes, in one pass, its loss as it is and with each single decoder layer bypassed (what perplexity
/// drop needs), instead of one pass per layer. Perplexity-drop metrics use it when a model offers it.
/// </summary>
/// <remarks>Thread-safety: as the model's.</remarks>
public interface ILayerSkipLossModel
{
    /// <summary>
    /// The mean next-token NLL per token (nats) of the sequences for the model as it is, then with each current layer
    /// bypassed: element 0 is the dense loss, element 1 + k the loss without layer k. Same definition as
    /// <see cref="IPrunableModel.ComputeLossAsync"/> (sequences shorter than two tokens contribute nothing).
    /// </summary>
    /// <param name="sequences">Token id sequences.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    ValueTask<IReadOnlyList<double>> ComputeLayerSkipLossesAsync(IReadOnlyList<IReadOnlyList<int>> sequences, CancellationToken cancellationToken = default);
}
