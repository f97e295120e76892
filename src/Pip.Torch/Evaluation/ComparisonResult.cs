using System.Text.Json.Serialization;

namespace Pip.Torch.Evaluation;

/// <summary>The perplexity of one model on one dataset.</summary>
/// <param name="Dataset">The dataset's name.</param>
/// <param name="Perplexity">exp(mean NLL).</param>
/// <param name="Nll">Mean negative log-likelihood per scored token (nats).</param>
/// <param name="Tokens">Scored tokens.</param>
/// <param name="Windows">Windows run.</param>
public sealed record DatasetPerplexity(string Dataset, double Perplexity, double Nll, long Tokens, int Windows);

/// <summary>The accuracy of one model on one zero-shot task.</summary>
/// <param name="Task">The task's lm-evaluation-harness name.</param>
/// <param name="Items">Items evaluated.</param>
/// <param name="Acc">Accuracy.</param>
/// <param name="AccStderr">Standard error of <paramref name="Acc"/>, or null.</param>
/// <param name="AccNorm">Length-normalised accuracy where the task reports it, else null.</param>
/// <param name="AccNormStderr">Standard error of <paramref name="AccNorm"/>, or null.</param>
/// <param name="Shown">The accuracy tables show (see <see cref="ShownAccuracy"/>).</param>
public sealed record TaskAccuracy(string Task, int Items, double Acc, double? AccStderr, double? AccNorm, double? AccNormStderr, double Shown);

/// <summary>One row of a comparison: a model (the dense one, or one method at one ratio) and its evaluation.</summary>
public sealed record ComparisonRow
{
    /// <summary>The method's key (<c>dense</c> for the unpruned model).</summary>
    public required string MethodKey { get; init; }

    /// <summary>The method's display name (<c>Dense</c> for the unpruned model).</summary>
    public required string Method { get; init; }

    /// <summary>The metric's name, or null for the dense model.</summary>
    public string? Metric { get; init; }

    /// <summary>The strategy's name, or null for the dense model.</summary>
    public string? Strategy { get; init; }

    /// <summary>Whether the consistency discriminator was used.</summary>
    public bool ConsistencyDiscriminator { get; init; }

    /// <summary>The target parameter ratio, or null for the dense model.</summary>
    public double? TargetRatio { get; init; }

    /// <summary>Original indices of the removed layers, in the order they were removed.</summary>
    public required IReadOnlyList<int> RemovedLayers { get; init; }

    /// <summary>Decoder layers left.</summary>
    public required int LayerCount { get; init; }

    /// <summary>Parameters left (a tied embedding and head counted once).</summary>
    public required long ParameterCount { get; init; }

    /// <summary>Fraction of the dense model's parameters removed.</summary>
    public required double RemovedParameterRatio { get; init; }

    /// <summary>Weight memory in GiB, each parameter in its own type.</summary>
    public required double WeightGiB { get; init; }

    /// <summary>Perplexity per dataset, in the order of the options.</summary>
    public required IReadOnlyList<DatasetPerplexity> Perplexity { get; init; }

    /// <summary>Accuracy per task, in the order of the options.</summary>
    public required IReadOnlyList<TaskAccuracy> Tasks { get; init; }

    /// <summary>The mean of the tasks' shown accuracies, or null without tasks.</summary>
    public double? AverageAccuracy { get; init; }

    /// <summary>Why the pruning run stopped, or null for the dense model.</summary>
    public PruningStopReason? StopReason { get; init; }

    /// <summary>Whether the pruning run reached its target, or null for the dense model.</summary>
    public bool? TargetReached { get; init; }

    /// <summary>Seconds of pruning.</summary>
    public double PruningSeconds { get; init; }

    /// <summary>Seconds of evaluation (0 when the evaluation was reused, see <see cref="EvaluationReusedFrom"/>).</summary>
    public double EvaluationSeconds { get; init; }

    /// <summary>
    /// When an earlier run of the comparison removed exactly the same layers, the row's figures are that run's (the two
    /// pruned models are identical, so evaluating again would give the same numbers): its method key and ratio, e.g.
    /// <c>block-influence@0.2</c> (<c>dense</c> for the dense model); null when this row was evaluated itself.
    /// </summary>
    public string? EvaluationReusedFrom { get; init; }

    /// <summary>The full report of the pruning run (not part of the comparison's JSON; written separately), or null for the dense model.</summary>
    [JsonIgnore]
    public PruningReport? Report { get; init; }
}

/// <summary>A method's per-layer importance on the dense model: the scores of its first round.</summary>
/// <param name="MethodKey">The method's key.</param>
/// <param name="Method">The method's display name.</param>
/// <param name="Metric">The metric's name.</param>
/// <param name="OriginalLayerIndices">The layers (all of the dense model).</param>
/// <param name="Scores">Each layer's score (higher: more important).</param>
/// <param name="Normalized">The scores mapped linearly to [0, 1] (min → 0, max → 1; all 0 when the scores are all equal).</param>
public sealed record LayerImportance(string MethodKey, string Method, string Metric, IReadOnlyList<int> OriginalLayerIndices,
    IReadOnlyList<double> Scores, IReadOnlyList<double> Normalized)
{
    /// <summary>Scores mapped linearly to [0, 1]: min → 0, max → 1; all 0 when they are all equal (or not finite).</summary>
    /// <param name="scores">The scores.</param>
    /// <returns>The normalised scores.</returns>
    public static IReadOnlyList<double> Normalize(IReadOnlyList<double> scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Count == 0) return [];
        var min = scores.Min();
        var max = scores.Max();
        var range = max - min;
        if (!(range > 0) || double.IsInfinity(range)) return new double[scores.Count];
        return [.. scores.Select(s => (s - min) / range)];
    }
}

/// <summary>A perplexity dataset as a comparison used it.</summary>
/// <param name="Name">The dataset's name.</param>
/// <param name="Path">The file.</param>
/// <param name="Rows">Rows (lines) joined.</param>
/// <param name="Join">How the rows were joined.</param>
/// <param name="Tokens">Tokens of the whole text.</param>
/// <param name="EvaluatedTokens">Tokens evaluated (after the partial last window is dropped).</param>
public sealed record ComparisonDataset(string Name, string? Path, int Rows, string Join, int Tokens, int EvaluatedTokens);

/// <summary>A zero-shot task as a comparison used it.</summary>
/// <param name="Name">The task's lm-evaluation-harness name.</param>
/// <param name="Path">The file.</param>
/// <param name="Items">Items evaluated.</param>
public sealed record ComparisonTask(string Name, string Path, int Items);

/// <summary>The settings a comparison ran with, recorded so it can be repeated.</summary>
public sealed record ComparisonSetup
{
    /// <summary>The methods, in table order.</summary>
    public required IReadOnlyList<ComparisonMethod> Methods { get; init; }

    /// <summary>The target ratios.</summary>
    public required IReadOnlyList<double> Ratios { get; init; }

    /// <summary>The seed of every run.</summary>
    public required int Seed { get; init; }

    /// <summary>Perturbation sets per round of PertImport.</summary>
    public required int PerturbationSets { get; init; }

    /// <summary>The norm of gradient-norm metrics.</summary>
    public required string Norm { get; init; }

    /// <summary>Longest token sequence per calibration sample.</summary>
    public required int MaxTokens { get; init; }

    /// <summary>The calibration file, or null.</summary>
    public string? CalibrationSource { get; init; }

    /// <summary>The calibration texts every method used (after fitting to <see cref="MaxTokens"/>).</summary>
    public required IReadOnlyList<string> CalibrationSamples { get; init; }

    /// <summary>The perplexity windows, in words.</summary>
    public required string Windowing { get; init; }

    /// <summary>The window length.</summary>
    public required int Window { get; init; }

    /// <summary>The stride, or null for non-overlapping windows.</summary>
    public int? Stride { get; init; }

    /// <summary>The perplexity datasets.</summary>
    public required IReadOnlyList<ComparisonDataset> Datasets { get; init; }

    /// <summary>The zero-shot tasks.</summary>
    public required IReadOnlyList<ComparisonTask> Tasks { get; init; }

    /// <summary>Which accuracy tables show.</summary>
    public required ShownAccuracy ShownAccuracy { get; init; }

    /// <summary>The compute type.</summary>
    public required string Dtype { get; init; }

    /// <summary>The device.</summary>
    public required string Device { get; init; }
}

/// <summary>The result of a comparison: the dense baseline, one row per method and ratio, and each method's layer importance.</summary>
public sealed record ComparisonResult
{
    /// <summary>The version of the JSON format.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>The JSON format version.</summary>
    public int FormatVersion { get; init; } = CurrentFormatVersion;

    /// <summary>The model folder (or the name given for it).</summary>
    public required string Model { get; init; }

    /// <summary>The model's architecture.</summary>
    public required string Architecture { get; init; }

    /// <summary>Decoder layers of the dense model.</summary>
    public required int OriginalLayerCount { get; init; }

    /// <summary>Parameters of the dense model.</summary>
    public required long OriginalParameterCount { get; init; }

    /// <summary>When the comparison started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>Seconds of the whole comparison.</summary>
    public double WallSeconds { get; init; }

    /// <summary>The settings.</summary>
    public required ComparisonSetup Setup { get; init; }

    /// <summary>The dense model's row.</summary>
    public required ComparisonRow Dense { get; init; }

    /// <summary>One row per method and ratio, method by method in the order of the options, ratios ascending.</summary>
    public required IReadOnlyList<ComparisonRow> Rows { get; init; }

    /// <summary>Each method's first-round scores on the dense model (a method none of whose runs scored is left out).</summary>
    public required IReadOnlyList<LayerImportance> Importance { get; init; }
}
