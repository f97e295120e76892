namespace Pip;

/// <summary>A kind of width unit of a decoder layer.</summary>
public enum WidthUnitKind
{
    /// <summary>
    /// An attention key/value group: one key/value head with the query heads that share it (grouped-query attention),
    /// i.e. its q/k/v output rows and its o_proj input columns. For multi-head attention a group is one head.
    /// </summary>
    Heads,

    /// <summary>An MLP intermediate channel: its gate/up rows and its down_proj input column.</summary>
    Channels,
}

/// <summary>Which kinds of width units a run prunes.</summary>
[Flags]
public enum WidthUnits
{
    /// <summary>Attention key/value groups only.</summary>
    Heads = 1,

    /// <summary>MLP channels only.</summary>
    Channels = 2,

    /// <summary>Both heads and channels.</summary>
    Both = Heads | Channels,
}

/// <summary>What to remove from the width of a model, and how to compensate.</summary>
/// <remarks>
/// Indices are in the model's current numbering; layers absent from a dictionary are left unchanged. When input means
/// are given for a layer, the model adds <c>W[:, removed] · mean[removed]</c> to the bias of the projection that
/// reads the removed units (o_proj for heads, down_proj for channels: FLAP's bias compensation).
/// </remarks>
public sealed record WidthRemovalPlan
{
    private static readonly IReadOnlyDictionary<int, IReadOnlyCollection<int>> NoUnits = new Dictionary<int, IReadOnlyCollection<int>>();

    /// <summary>Layer → key/value groups to remove.</summary>
    public IReadOnlyDictionary<int, IReadOnlyCollection<int>> Heads { get; init; } = NoUnits;

    /// <summary>Layer → MLP channels to remove.</summary>
    public IReadOnlyDictionary<int, IReadOnlyCollection<int>> Channels { get; init; } = NoUnits;

    /// <summary>Layer → the mean of o_proj's input over the calibration tokens (heads × head_dim values), for bias compensation; null for none.</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<double>>? HeadInputMeans { get; init; }

    /// <summary>Layer → the mean of down_proj's input over the calibration tokens (intermediate_size values), for bias compensation; null for none.</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<double>>? ChannelInputMeans { get; init; }
}

/// <summary>A model whose decoder layers can be narrowed: attention key/value groups and MLP channels removed.</summary>
/// <remarks>Same ownership and thread-safety rules as <see cref="IPrunableModel"/>.</remarks>
public interface IWidthPrunableModel : IPrunableModel
{
    /// <summary>Current number of units of a kind in a layer (key/value groups, or MLP channels).</summary>
    /// <param name="layer">Current layer index.</param>
    /// <param name="kind">The kind of unit.</param>
    int GetUnitCount(int layer, WidthUnitKind kind);

    /// <summary>Number of parameters one unit of a kind holds in a layer (weights and biases that go with it).</summary>
    /// <param name="layer">Current layer index.</param>
    /// <param name="kind">The kind of unit.</param>
    long GetUnitParameterCount(int layer, WidthUnitKind kind);

    /// <summary>Why bias compensation cannot be applied to units of a kind in this model, or null when it can.</summary>
    /// <param name="kind">The kind of unit.</param>
    string? GetBiasCompensationObstacle(WidthUnitKind kind);

    /// <summary>Removes units; every entry is checked before anything changes. At least one unit of each kind stays in each layer.</summary>
    /// <param name="plan">The units to remove, and optional bias compensation.</param>
    void RemoveUnits(WidthRemovalPlan plan);
}

/// <summary>What a width importance metric is given.</summary>
/// <param name="Model">The model in its current state.</param>
/// <param name="Samples">The calibration samples.</param>
/// <param name="Units">The kinds of units to score (scores of other kinds may be left null).</param>
/// <param name="Layers">Current layer indices whose units are to be scored (others may get empty lists).</param>
/// <param name="Seed">Seed for any randomness of the metric.</param>
/// <param name="Progress">Receives progress, or null.</param>
public sealed record WidthImportanceRequest(
    IWidthPrunableModel Model,
    IReadOnlyList<CalibrationSample> Samples,
    WidthUnits Units,
    IReadOnlyList<int> Layers,
    int Seed,
    IProgress<ScoringProgress>? Progress = null);

/// <summary>Importance of every unit: the higher, the more it matters; the lowest are removed first.</summary>
/// <param name="Heads">Per current layer, one score per key/value group (empty for layers not asked for), or null when heads were not asked for.</param>
/// <param name="Channels">Per current layer, one score per MLP channel (empty for layers not asked for), or null when channels were not asked for.</param>
public sealed record WidthScores(IReadOnlyList<IReadOnlyList<double>>? Heads, IReadOnlyList<IReadOnlyList<double>>? Channels)
{
    /// <summary>Per current layer, the mean of o_proj's input over the calibration tokens (for bias compensation), or null when the metric does not measure it.</summary>
    public IReadOnlyList<IReadOnlyList<double>>? HeadInputMeans { get; init; }

    /// <summary>Per current layer, the mean of down_proj's input over the calibration tokens (for bias compensation), or null when the metric does not measure it.</summary>
    public IReadOnlyList<IReadOnlyList<double>>? ChannelInputMeans { get; init; }

    /// <summary>The scores of one kind, or null.</summary>
    /// <param name="kind">The kind.</param>
    public IReadOnlyList<IReadOnlyList<double>>? Of(WidthUnitKind kind) => kind == WidthUnitKind.Heads ? Heads : Channels;
}

/// <summary>Scores the width units (attention key/value groups, MLP channels) of a model's layers.</summary>
/// <remarks>
/// <para>Convention: higher means more important. Metrics that need a backend's model type throw
/// <see cref="NotSupportedException"/> naming it.</para>
/// <para>The metric keeps nothing beyond the call, leaves the weights as it found them, and is not called concurrently
/// on the same model.</para>
/// </remarks>
public interface IWidthImportanceMetric
{
    /// <summary>Short name used in reports, options and the command line (for example <c>taylor</c>, <c>flap</c>).</summary>
    string Name { get; }

    /// <summary>Scores the units asked for.</summary>
    /// <param name="request">The model, samples, kinds and layers.</param>
    /// <param name="cancellationToken">Cancels the work; the model is left unchanged.</param>
    ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default);
}
