namespace Pip;

/// <summary>Why a pruning run stopped.</summary>
public enum PruningStopReason
{
    /// <summary>The target was reached: no further layer fits in the parameter budget, or the layer count was removed.</summary>
    TargetReached,

    /// <summary>The strategy asked to stop before the target was reached (a one-shot strategy stops after its only round).</summary>
    StrategyStopped,

    /// <summary>The filters left no candidate layer.</summary>
    NoCandidates,

    /// <summary>The strategy chose no layer although it asked to continue.</summary>
    NothingRemoved,

    /// <summary>Only one decoder layer is left; Pip never removes the last one.</summary>
    SingleLayerLeft,

    /// <summary>Width pruning: the pruned layers are down to their last unit of each pruned kind before the budget was spent.</summary>
    UnitsExhausted,
}

/// <summary>What a pruning run removes.</summary>
public enum PruningMode
{
    /// <summary>Whole decoder layers.</summary>
    Depth,

    /// <summary>Attention key/value groups and MLP channels inside the layers.</summary>
    Width,
}

/// <summary>The stage of a pruning run reported through <see cref="PruningProgress"/>.</summary>
public enum PruningStage
{
    /// <summary>Making the perturbed twins of a round.</summary>
    Perturbing,

    /// <summary>The metric is scoring the layers.</summary>
    Scoring,

    /// <summary>Layers are being removed.</summary>
    Removing,

    /// <summary>A round is complete; <see cref="PruningProgress.CompletedRound"/> holds it.</summary>
    RoundCompleted,
}

/// <summary>Progress of a pruning run.</summary>
/// <param name="Round">The round (0-based).</param>
/// <param name="Stage">What the run is doing.</param>
/// <param name="Completed">Work units of the stage done (twins made, metric units scored).</param>
/// <param name="Total">Work units of the stage.</param>
/// <param name="LayerCount">Current number of decoder layers.</param>
/// <param name="ParameterCount">Current number of parameters.</param>
/// <param name="CompletedRound">The finished round when <paramref name="Stage"/> is <see cref="PruningStage.RoundCompleted"/>; otherwise null.</param>
public sealed record PruningProgress(
    int Round,
    PruningStage Stage,
    int Completed,
    int Total,
    int LayerCount,
    long ParameterCount,
    PruningRound? CompletedRound = null);

/// <summary>The settings a pruning run used, recorded so that it can be repeated.</summary>
public sealed record PruningSettings
{
    /// <summary>Whether the run removed layers (depth) or units inside them (width). Default <see cref="PruningMode.Depth"/> (reports of format 1 are depth runs).</summary>
    public PruningMode Mode { get; init; } = PruningMode.Depth;

    /// <summary>The importance metric's name.</summary>
    public required string Metric { get; init; }

    /// <summary>The perturber's name, or null when the metric uses no perturbations.</summary>
    public string? Perturber { get; init; }

    /// <summary>The strategy's name.</summary>
    public required string Strategy { get; init; }

    /// <summary>The candidate filters' names, in the order they run.</summary>
    public required IReadOnlyList<string> Filters { get; init; }

    /// <summary>The pruning target.</summary>
    public required PruningTarget Target { get; init; }

    /// <summary>The run's seed; every round's and perturbation set's seed derives from it.</summary>
    public required int Seed { get; init; }

    /// <summary>Number of independent perturbation sets made per round (when the metric uses perturbations).</summary>
    public required int PerturbationSets { get; init; }

    /// <summary>The vector norm norm-based metrics use (<c>L1</c>, <c>L2</c>, <c>Linf</c>).</summary>
    public required string Norm { get; init; }

    /// <summary>Options of the components (perturber, strategy, filters, metric), flattened to <c>component.Option</c> keys with invariant-culture values.</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = new Dictionary<string, string>();
}

/// <summary>A calibration sample as recorded in a report.</summary>
/// <param name="Index">The sample's index.</param>
/// <param name="Text">The sample's text.</param>
/// <param name="TokenIds">Its token ids, when the run recorded them; otherwise null.</param>
public sealed record SampleRecord(int Index, string Text, IReadOnlyList<int>? TokenIds = null);

/// <summary>A perturbed twin as recorded in a report.</summary>
/// <param name="SampleIndex">Index of the sample it is the twin of.</param>
/// <param name="Seed">The seed the perturber was given.</param>
/// <param name="Text">The perturbed text.</param>
/// <param name="Edits">The edits, in order of offset in the original text.</param>
/// <param name="TokenIds">Token ids of the perturbed text, when the run recorded them; otherwise null.</param>
public sealed record TwinRecord(int SampleIndex, int Seed, string Text, IReadOnlyList<PerturbationEdit> Edits, IReadOnlyList<int>? TokenIds = null);

/// <summary>A layer a filter kept out of the candidates of a round.</summary>
/// <param name="Layer">Current layer index at the time of the round.</param>
/// <param name="OriginalLayer">The layer's index in the model as first loaded.</param>
/// <param name="Filter">The name of the filter that excluded it.</param>
/// <param name="Reason">Why.</param>
public sealed record LayerExclusion(int Layer, int OriginalLayer, string Filter, string Reason);

/// <summary>A layer removed in a round.</summary>
/// <param name="Layer">Current layer index at the time of the round (before removal).</param>
/// <param name="OriginalLayer">The layer's index in the model as first loaded.</param>
/// <param name="Score">The layer's score in the round.</param>
/// <param name="ParameterCount">The layer's number of parameters.</param>
public sealed record LayerRemoval(int Layer, int OriginalLayer, double Score, long ParameterCount);

/// <summary>One round of a pruning run.</summary>
public sealed record PruningRound
{
    /// <summary>The round (0-based).</summary>
    public required int Round { get; init; }

    /// <summary>Number of decoder layers at the start of the round.</summary>
    public required int LayerCountBefore { get; init; }

    /// <summary>Number of decoder layers at the end of the round.</summary>
    public required int LayerCountAfter { get; init; }

    /// <summary>Number of parameters at the start of the round.</summary>
    public required long ParameterCountBefore { get; init; }

    /// <summary>Number of parameters at the end of the round.</summary>
    public required long ParameterCountAfter { get; init; }

    /// <summary>For each current layer of the round, its original index (the key to <see cref="Scores"/>).</summary>
    public required IReadOnlyList<int> OriginalLayerIndices { get; init; }

    /// <summary>Every current layer's score (higher: more important). In a width round: the sum of the layer's unit scores (0 for layers outside the range); see <see cref="Width"/> for the units.</summary>
    public required IReadOnlyList<double> Scores { get; init; }

    /// <summary>Scores under each perturbation set (outer: set; inner: layer), or null.</summary>
    public IReadOnlyList<IReadOnlyList<double>>? PerPerturbationSetScores { get; init; }

    /// <summary>The perturbation sets of the round (outer: set; inner: one twin per sample); empty when the metric uses none.</summary>
    public IReadOnlyList<IReadOnlyList<TwinRecord>> PerturbationSets { get; init; } = [];

    /// <summary>Layers the filters excluded, with reasons.</summary>
    public IReadOnlyList<LayerExclusion> Excluded { get; init; } = [];

    /// <summary>Current layer indices left as candidates after the filters.</summary>
    public required IReadOnlyList<int> Candidates { get; init; }

    /// <summary>Layers removed in the round, in the order chosen (lowest score first).</summary>
    public required IReadOnlyList<LayerRemoval> Removed { get; init; }

    /// <summary>Seconds spent making perturbed twins.</summary>
    public double PerturbationSeconds { get; init; }

    /// <summary>Seconds spent by the metric.</summary>
    public double ScoringSeconds { get; init; }

    /// <summary>Seconds of the whole round.</summary>
    public double WallSeconds { get; init; }

    /// <summary>For a width round, what each layer lost; null for a depth round.</summary>
    public WidthRoundRecord? Width { get; init; }
}

/// <summary>What a width-pruning round did.</summary>
public sealed record WidthRoundRecord
{
    /// <summary>The kinds of units pruned.</summary>
    public required WidthUnits Units { get; init; }

    /// <summary>How the removal was spread over the layers.</summary>
    public required string Allocation { get; init; }

    /// <summary>The group reduction of the metric, or null when it has none.</summary>
    public string? GroupReduction { get; init; }

    /// <summary>First original layer index that could be pruned (inclusive).</summary>
    public required int LayerStart { get; init; }

    /// <summary>End of the original layer indices that could be pruned (exclusive).</summary>
    public required int LayerEnd { get; init; }

    /// <summary>The parameter budget: ratio × the original parameter count.</summary>
    public required double BudgetParameters { get; init; }

    /// <summary>Whether FLAP's bias compensation was applied.</summary>
    public required bool BiasCompensation { get; init; }

    /// <summary>Every layer of the round, pruned or not, in model order.</summary>
    public required IReadOnlyList<WidthLayerRecord> Layers { get; init; }
}

/// <summary>One layer of a width-pruning round.</summary>
public sealed record WidthLayerRecord
{
    /// <summary>Current layer index.</summary>
    public required int Layer { get; init; }

    /// <summary>The layer's index in the model as first loaded.</summary>
    public required int OriginalLayer { get; init; }

    /// <summary>Whether the layer was in the pruned range.</summary>
    public required bool InRange { get; init; }

    /// <summary>Key/value groups before the round.</summary>
    public required int HeadsBefore { get; init; }

    /// <summary>Key/value groups after the round.</summary>
    public required int HeadsAfter { get; init; }

    /// <summary>MLP channels before the round.</summary>
    public required int ChannelsBefore { get; init; }

    /// <summary>MLP channels after the round.</summary>
    public required int ChannelsAfter { get; init; }

    /// <summary>Parameters of the layer before the round.</summary>
    public required long ParameterCountBefore { get; init; }

    /// <summary>Parameters of the layer after the round (bias compensation included).</summary>
    public required long ParameterCountAfter { get; init; }

    /// <summary>Removed key/value groups (indices before the round), ascending.</summary>
    public IReadOnlyList<int> RemovedHeads { get; init; } = [];

    /// <summary>Removed channels (indices before the round), ascending.</summary>
    public IReadOnlyList<int> RemovedChannels { get; init; } = [];

    /// <summary>Score of every key/value group, or null when heads were not scored in this layer.</summary>
    public IReadOnlyList<double>? HeadScores { get; init; }

    /// <summary>Score of every channel, or null when channels were not scored in this layer.</summary>
    public IReadOnlyList<double>? ChannelScores { get; init; }
}

/// <summary>The record of a pruning run: settings, samples and twins, every round's scores and decisions.</summary>
public sealed record PruningReport
{
    /// <summary>The version of the report format this library writes (2: width runs, <see cref="PruningSettings.Mode"/> and <see cref="PruningRound.Width"/>; version 1 reports still read).</summary>
    public const int CurrentFormatVersion = 2;

    /// <summary>The report format version.</summary>
    public int FormatVersion { get; init; } = CurrentFormatVersion;

    /// <summary>The model's architecture name.</summary>
    public required string Architecture { get; init; }

    /// <summary>The settings of the run.</summary>
    public required PruningSettings Settings { get; init; }

    /// <summary>When the run started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>Number of decoder layers before pruning.</summary>
    public required int OriginalLayerCount { get; init; }

    /// <summary>Number of parameters before pruning (embeddings and head included).</summary>
    public required long OriginalParameterCount { get; init; }

    /// <summary>Number of decoder layers after pruning.</summary>
    public required int FinalLayerCount { get; init; }

    /// <summary>Number of parameters after pruning.</summary>
    public required long FinalParameterCount { get; init; }

    /// <summary>Original indices of the removed layers, in the order they were removed.</summary>
    public required IReadOnlyList<int> RemovedOriginalLayers { get; init; }

    /// <summary>Original indices of the layers left, in model order.</summary>
    public required IReadOnlyList<int> RemainingOriginalLayers { get; init; }

    /// <summary>The calibration samples.</summary>
    public required IReadOnlyList<SampleRecord> Samples { get; init; }

    /// <summary>The rounds, in order.</summary>
    public required IReadOnlyList<PruningRound> Rounds { get; init; }

    /// <summary>Why the run stopped.</summary>
    public required PruningStopReason StopReason { get; init; }

    /// <summary>Whether the target was reached.</summary>
    public required bool TargetReached { get; init; }

    /// <summary>Seconds of the whole run.</summary>
    public double WallSeconds { get; init; }

    /// <summary>Fraction of the original parameters removed.</summary>
    public double RemovedParameterRatio =>
        OriginalParameterCount == 0 ? 0 : (double)(OriginalParameterCount - FinalParameterCount) / OriginalParameterCount;
}
