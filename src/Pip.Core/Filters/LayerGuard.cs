namespace Pip;

/// <summary>Never lets the first k or last m layers of the original model be candidates (by original index).</summary>
/// <remarks>Stateless and thread-safe.</remarks>
internal sealed class LayerGuard : ICandidateFilter
{
    private readonly int _first;
    private readonly int _last;
    private readonly int? _originalLayerCount;

    public LayerGuard(LayerGuardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _first = options.First;
        _last = options.Last;
        _originalLayerCount = options.OriginalLayerCount;
    }

    public string Name => LayerGuardConstants.Name;

    public CandidateFilterResult Filter(IPrunableModel model, LayerScores scores, IReadOnlyList<int> candidates)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(candidates);
        IReadOnlyList<int> original = model.OriginalLayerIndices;
        int originalCount = _originalLayerCount ?? (original.Count == 0 ? 0 : original.Max() + 1);
        var kept = new List<int>(candidates.Count);
        var excluded = new Dictionary<int, string>();
        foreach (int layer in candidates)
        {
            int o = original[layer];
            if (o < _first)
            {
                excluded[layer] = $"original layer {o} is one of the first {_first} layers, which are never pruned";
            }
            else if (o >= originalCount - _last)
            {
                excluded[layer] = $"original layer {o} is one of the last {_last} of {originalCount} layers, which are never pruned";
            }
            else
            {
                kept.Add(layer);
            }
        }

        return new CandidateFilterResult(kept, excluded);
    }
}
