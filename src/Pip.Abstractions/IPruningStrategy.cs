namespace Pip;

/// <summary>How much to prune.</summary>
/// <remarks>Exactly one of <see cref="ParameterRatio"/> and <see cref="Layers"/> is set.</remarks>
public sealed record PruningTarget
{
    private PruningTarget(double? ratio, int? layers)
    {
        ParameterRatio = ratio;
        Layers = layers;
    }

    /// <summary>Fraction of all parameters (embeddings and head included) to remove at most, or null.</summary>
    public double? ParameterRatio { get; }

    /// <summary>Number of layers to remove, or null.</summary>
    public int? Layers { get; }

    /// <summary>Remove as many layers as fit without removing more than <paramref name="ratio"/> of all parameters.</summary>
    /// <param name="ratio">A fraction in (0, 1).</param>
    public static PruningTarget Ratio(double ratio) => new(ratio, null);

    /// <summary>Remove exactly <paramref name="layers"/> layers.</summary>
    /// <param name="layers">A positive count.</param>
    public static PruningTarget LayerCount(int layers) => new(null, layers);

    /// <inheritdoc />
    public override string ToString() => ParameterRatio is { } r ? $"ratio {r:0.###}" : $"{Layers} layers";
}

/// <summary>The state a strategy decides on in one round.</summary>
/// <param name="Model">The model in its current state.</param>
/// <param name="OriginalParameterCount">Parameters of the model before any pruning.</param>
/// <param name="RemovedParameterCount">Parameters removed so far.</param>
/// <param name="RemovedLayerCount">Layers removed so far.</param>
/// <param name="Target">The pruning target.</param>
/// <param name="Scores">This round's scores.</param>
/// <param name="Candidates">Current layer indices that may be removed this round (filters have run).</param>
/// <param name="Round">The round (0-based).</param>
public sealed record PruningState(
    IPrunableModel Model,
    long OriginalParameterCount,
    long RemovedParameterCount,
    int RemovedLayerCount,
    PruningTarget Target,
    LayerScores Scores,
    IReadOnlyList<int> Candidates,
    int Round);

/// <summary>What a strategy decided in one round.</summary>
/// <param name="LayersToRemove">Current layer indices to remove now (may be empty).</param>
/// <param name="Continue">Whether to score again and run another round after removing them.</param>
public sealed record PruningDecision(IReadOnlyList<int> LayersToRemove, bool Continue);

/// <summary>Decides, from a round's scores, which layers to remove and whether to go on (one-shot or iterative).</summary>
/// <remarks>Stateless and thread-safe; the pipeline owns the loop and the model.</remarks>
public interface IPruningStrategy
{
    /// <summary>Short name (<c>one-shot</c>, <c>iterative</c>).</summary>
    string Name { get; }

    /// <summary>Decides one round.</summary>
    /// <param name="state">The round's state.</param>
    PruningDecision Decide(PruningState state);
}

/// <summary>Removes layers from the candidates of a round (guards, the consistency discriminator).</summary>
/// <remarks>Filters run in the order added; each sees the survivors of the previous one. Stateless and thread-safe.</remarks>
public interface ICandidateFilter
{
    /// <summary>Short name used in reports.</summary>
    string Name { get; }

    /// <summary>Returns the candidates to keep and, for each excluded layer, why.</summary>
    /// <param name="model">The model in its current state.</param>
    /// <param name="scores">This round's scores.</param>
    /// <param name="candidates">Current layer indices still candidates.</param>
    CandidateFilterResult Filter(IPrunableModel model, LayerScores scores, IReadOnlyList<int> candidates);
}

/// <summary>Result of a <see cref="ICandidateFilter"/>.</summary>
/// <param name="Kept">Candidates kept.</param>
/// <param name="Excluded">Excluded current layer indices, each with its reason.</param>
public sealed record CandidateFilterResult(IReadOnlyList<int> Kept, IReadOnlyDictionary<int, string> Excluded);
