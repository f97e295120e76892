namespace Pip;

/// <summary>The pruning-target rules shared by the strategies and the pipeline.</summary>
/// <remarks>
/// <para>Ratio target: layers are removed while the parameters removed so far plus the next layer's stay within
/// ratio × the original parameter count (all parameters, embeddings and head included). The first layer that does not
/// fit ends the selection; smaller layers further down the order are not tried, so the importance order is kept.
/// Example: LLaMA-3-8B has 32 layers of 218,112,000 parameters and 8,030,261,248 in all; at 0.2 the budget is
/// 1,606,052,249.6, so 7 layers (1,526,784,000, 19.0 %) fit and the 8th (21.7 %) does not.</para>
/// <para>Layer-count target: exactly that many layers are removed.</para>
/// <para>At least one decoder layer always stays.</para>
/// </remarks>
public static class TargetPlanner
{
    /// <summary>Relative slack of the budget comparison, so that a ratio computed from exact counts admits them.</summary>
    public const double RelativeTolerance = 1e-12;

    /// <summary>Whether removing a layer of <paramref name="layerParameters"/> after <paramref name="removedParameters"/> stays within <paramref name="ratio"/> of <paramref name="originalParameters"/>.</summary>
    /// <param name="removedParameters">Parameters removed so far.</param>
    /// <param name="layerParameters">The next layer's parameters.</param>
    /// <param name="originalParameters">Parameters of the original model.</param>
    /// <param name="ratio">The ratio target.</param>
    public static bool Fits(long removedParameters, long layerParameters, long originalParameters, double ratio)
    {
        double budget = ratio * originalParameters;
        return removedParameters + layerParameters <= budget * (1 + RelativeTolerance);
    }

    /// <summary>How many layers, taken in the given order, fit in a ratio target.</summary>
    /// <param name="originalParameters">Parameters of the original model.</param>
    /// <param name="layerParameters">Parameters of each layer, in removal order.</param>
    /// <param name="ratio">The ratio target.</param>
    public static int CountLayersWithinRatio(long originalParameters, IEnumerable<long> layerParameters, double ratio)
    {
        ArgumentNullException.ThrowIfNull(layerParameters);
        long removed = 0;
        int count = 0;
        foreach (long layer in layerParameters)
        {
            if (!Fits(removed, layer, originalParameters, ratio))
            {
                break;
            }

            removed += layer;
            count++;
        }

        return count;
    }

    /// <summary>
    /// The candidates to remove now: by ascending score (ties: lower index first), as many as fit in the target, at
    /// most <paramref name="maxLayers"/>, leaving at least one layer.
    /// </summary>
    /// <param name="state">The round's state.</param>
    /// <param name="maxLayers">The most layers to take this round.</param>
    public static IReadOnlyList<int> SelectLayers(PruningState state, int maxLayers)
    {
        ArgumentNullException.ThrowIfNull(state);
        IReadOnlyList<double> scores = state.Scores.Scores;
        IEnumerable<int> ordered = state.Candidates.Distinct().OrderBy(l => scores[l]).ThenBy(l => l);
        var chosen = new List<int>();
        long removed = state.RemovedParameterCount;
        int maxByLayers = state.Model.LayerCount - 1;
        foreach (int layer in ordered)
        {
            if (chosen.Count >= maxLayers || chosen.Count >= maxByLayers)
            {
                break;
            }

            if (state.Target.Layers is { } layers)
            {
                if (state.RemovedLayerCount + chosen.Count >= layers)
                {
                    break;
                }
            }
            else
            {
                long size = state.Model.GetLayerParameterCount(layer);
                if (!Fits(removed, size, state.OriginalParameterCount, state.Target.ParameterRatio!.Value))
                {
                    break;
                }

                removed += size;
            }

            chosen.Add(layer);
        }

        return chosen;
    }

    /// <summary>Whether the target is reached for a model in its current state.</summary>
    /// <param name="model">The model.</param>
    /// <param name="target">The target.</param>
    /// <param name="originalParameters">Parameters of the original model.</param>
    /// <param name="removedParameters">Parameters removed so far.</param>
    /// <param name="removedLayers">Layers removed so far.</param>
    /// <returns>For a layer count, whether that many were removed; for a ratio, whether no current layer fits any more.</returns>
    public static bool IsReached(IPrunableModel model, PruningTarget target, long originalParameters, long removedParameters, int removedLayers)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(target);
        return IsReached(model, target, originalParameters, removedParameters, removedLayers, []);
    }

    /// <summary>Whether the target will be reached once <paramref name="removing"/> are removed too.</summary>
    /// <param name="state">The round's state.</param>
    /// <param name="removing">Current layer indices about to be removed.</param>
    public static bool IsReachedAfter(PruningState state, IReadOnlyCollection<int> removing)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(removing);
        long removed = state.RemovedParameterCount + removing.Sum(state.Model.GetLayerParameterCount);
        return IsReached(state.Model, state.Target, state.OriginalParameterCount, removed, state.RemovedLayerCount + removing.Count, removing);
    }

    private static bool IsReached(IPrunableModel model, PruningTarget target, long originalParameters, long removedParameters, int removedLayers, IReadOnlyCollection<int> removing)
    {
        if (target.Layers is { } layers)
        {
            return removedLayers >= layers;
        }

        double ratio = target.ParameterRatio ?? throw new ArgumentException("The target has neither a ratio nor a layer count.", nameof(target));
        var excluded = removing as IReadOnlySet<int> ?? new HashSet<int>(removing);
        for (int layer = 0; layer < model.LayerCount; layer++)
        {
            if (!excluded.Contains(layer) && Fits(removedParameters, model.GetLayerParameterCount(layer), originalParameters, ratio))
            {
                return false;
            }
        }

        return true;
    }
}
