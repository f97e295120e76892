namespace Pip;

/// <summary>What an importance metric is given in one scoring round.</summary>
/// <param name="Model">The model in its current (possibly already pruned) state.</param>
/// <param name="Samples">The calibration samples.</param>
/// <param name="PerturbationSets">Independent perturbation sets: each holds one twin per sample, in sample order. Empty for metrics that do not use perturbations.</param>
/// <param name="Round">The pruning round (0-based).</param>
/// <param name="Seed">Seed for any randomness of the metric in this round.</param>
/// <param name="Progress">Receives progress, or null.</param>
public sealed record ImportanceRequest(
    IPrunableModel Model,
    IReadOnlyList<CalibrationSample> Samples,
    IReadOnlyList<IReadOnlyList<PerturbedSample>> PerturbationSets,
    int Round,
    int Seed,
    IProgress<ScoringProgress>? Progress = null);

/// <summary>Progress of one scoring round.</summary>
/// <param name="Metric">The metric's name.</param>
/// <param name="Completed">Work units done.</param>
/// <param name="Total">Work units in the round.</param>
public sealed record ScoringProgress(string Metric, int Completed, int Total);

/// <summary>Importance of each current layer: the higher, the more the layer matters; the lowest is pruned first.</summary>
/// <param name="Scores">One score per current layer.</param>
/// <param name="PerPerturbationSet">For perturbation-based metrics, the scores under each perturbation set (outer: set; inner: layer); otherwise null.</param>
public sealed record LayerScores(IReadOnlyList<double> Scores, IReadOnlyList<IReadOnlyList<double>>? PerPerturbationSet = null);

/// <summary>Scores the decoder layers of a model.</summary>
/// <remarks>
/// <para>Convention: higher means more important; pruning removes the lowest scores first. Metrics whose natural
/// quantity runs the other way (a loss increase is importance; a cosine similarity is not) convert it.</para>
/// <para>Backends: a metric may need a specific backend's model type; it throws <see cref="NotSupportedException"/>
/// naming the type it needs when given another.</para>
/// <para>Ownership and thread-safety: the metric does not keep the model or samples beyond the call, must leave the
/// model's weights as it found them, and is not called concurrently on the same model.</para>
/// </remarks>
public interface IImportanceMetric
{
    /// <summary>Short name used in reports and options (for example <c>pip</c>, <c>block-influence</c>).</summary>
    string Name { get; }

    /// <summary>Whether the metric needs perturbed twins (the pipeline makes them only then).</summary>
    bool UsesPerturbations { get; }

    /// <summary>Scores every current layer.</summary>
    /// <param name="request">The model, samples and twins.</param>
    /// <param name="cancellationToken">Cancels the work; the model is left unchanged.</param>
    ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default);
}
