using System.Globalization;
using Pip.Evaluation;
using Pip.Torch.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Evaluation;

/// <summary>A perplexity dataset file of a comparison.</summary>
/// <param name="Name"><see cref="PerplexityDatasets.WikiText2Name"/> or <see cref="PerplexityDatasets.PtbName"/>: decides how the file is read.</param>
/// <param name="Path">The file.</param>
public sealed record PerplexityDatasetFile(string Name, string Path);

/// <summary>A zero-shot task file (JSONL) of a comparison.</summary>
/// <param name="Kind">The task's format: decides how the file is read and scored (lm-evaluation-harness's task of that name).</param>
/// <param name="Path">The file.</param>
/// <param name="Label">The name tables show; <see langword="null"/> for the format's name (<see cref="ZeroShotTasks.Name"/>). Give one when the
/// file is not the public task but a task of your own written in its format.</param>
public sealed record ZeroShotTaskFile(ZeroShotTaskKind Kind, string Path, string? Label = null)
{
    /// <summary>The name tables show: <see cref="Label"/>, or the format's name.</summary>
    public string DisplayName => string.IsNullOrWhiteSpace(Label) ? ZeroShotTasks.Name(Kind) : Label;
}

/// <summary>Which accuracy of a task tables show (JSON always holds both).</summary>
public enum ShownAccuracy
{
    /// <summary><c>acc_norm</c> where lm-evaluation-harness reports it (PIQA, HellaSwag, ARC, OpenBookQA), <c>acc</c> elsewhere (BoolQ, WinoGrande).</summary>
    AccNormWhereReported,

    /// <summary><c>acc</c> for every task.</summary>
    Acc,
}

/// <summary>Defaults of a comparison.</summary>
public static class ComparisonConstants
{
    /// <summary>The default ratios: 0.1, 0.2, 0.3 of all parameters.</summary>
    public static IReadOnlyList<double> DefaultRatios { get; } = [0.1, 0.2, 0.3];
}

/// <summary>What a comparison runs: methods, ratios, pruning settings shared by every method, and the evaluation.</summary>
/// <remarks>Mutable; <see cref="Comparison.RunAsync(string, CalibrationSet, ComparisonOptions, IProgress{ComparisonProgress}?, Microsoft.Extensions.Logging.ILoggerFactory?, CancellationToken)"/> validates it and reads it once, at the start.</remarks>
public sealed class ComparisonOptions
{
    /// <summary>The methods, in table order. Default <see cref="ComparisonMethods.Defaults"/>.</summary>
    public IList<ComparisonMethod> Methods { get; set; } = [.. ComparisonMethods.Defaults];

    /// <summary>The parameter ratios, each in (0, 1): each method removes as many layers as fit in each. Default 0.1, 0.2, 0.3.</summary>
    public IList<double> Ratios { get; set; } = [.. ComparisonConstants.DefaultRatios];

    /// <summary>The seed of every run (perturbations, random scores). Default <see cref="PipelineConstants.DefaultSeed"/>.</summary>
    public int Seed { get; set; } = PipelineConstants.DefaultSeed;

    /// <summary>Perturbation sets per round of PertImport. Default <see cref="PipelineConstants.DefaultPerturbationSets"/>.</summary>
    public int PerturbationSets { get; set; } = PipelineConstants.DefaultPerturbationSets;

    /// <summary>The norm of gradient-norm metrics. Default <see cref="PipelineConstants.DefaultNorm"/>.</summary>
    public string Norm { get; set; } = PipelineConstants.DefaultNorm;

    /// <summary>Longest token sequence per calibration sample, for every metric. Default <see cref="TorchMetricConstants.DefaultMaxTokens"/>.</summary>
    public int MaxTokens { get; set; } = TorchMetricConstants.DefaultMaxTokens;

    /// <summary>
    /// Whether calibration samples longer than <see cref="MaxTokens"/> are first cut at the last word boundary that
    /// fits (as <c>pip-prune prune</c> does, so that every perturbation edit is inside what the metric sees). Default true.
    /// </summary>
    public bool FitCalibrationToMaxTokens { get; set; } = true;

    /// <summary>Whether reports record token ids. Default true.</summary>
    public bool RecordTokenIds { get; set; } = true;

    /// <summary>The perplexity datasets, in column order.</summary>
    public IList<PerplexityDatasetFile> PerplexityDatasets { get; set; } = [];

    /// <summary>What joins PTB's sentences. Default <see cref="Pip.Evaluation.PerplexityDatasets.LlmPrunerPtbSeparator"/> (<c>"\n\n"</c>).</summary>
    public string PtbSeparator { get; set; } = Pip.Evaluation.PerplexityDatasets.LlmPrunerPtbSeparator;

    /// <summary>The perplexity windows. Default 128-token non-overlapping windows, the partial last one dropped.</summary>
    public CorpusWindowing Windowing { get; set; } = new();

    /// <summary>The zero-shot tasks, in column order (none by default).</summary>
    public IList<ZeroShotTaskFile> Tasks { get; set; } = [];

    /// <summary>Evaluate only the first N items of each task, or null for all.</summary>
    public int? MaxItems { get; set; }

    /// <summary>The length unit of <c>acc_norm</c>. Default <see cref="LengthUnit.CodePoints"/> (Python's <c>len</c>, as lm-evaluation-harness).</summary>
    public LengthUnit AccNormUnit { get; set; } = LengthUnit.CodePoints;

    /// <summary>Which accuracy tables show and average. Default <see cref="ShownAccuracy.AccNormWhereReported"/>.</summary>
    public ShownAccuracy ShownAccuracy { get; set; } = ShownAccuracy.AccNormWhereReported;

    /// <summary>The most zero-shot requests per forward pass. Default 8. (Perplexity windows per pass: <see cref="CorpusWindowing.BatchSize"/>.)</summary>
    public int ZeroShotBatchSize { get; set; } = 8;

    /// <summary>The longest zero-shot input, or null for the model's <c>max_position_embeddings</c>.</summary>
    public int? ZeroShotMaxLength { get; set; }

    /// <summary>The type to compute in, or null for <see cref="TorchCausalLM.Load(string, TorchSharp.torch.ScalarType?, TorchSharp.torch.Device?)"/>'s automatic choice.</summary>
    public ScalarType? Dtype { get; set; }

    /// <summary>The device, or null for the CPU.</summary>
    public Device? Device { get; set; }

    /// <summary>Checks every setting; throws one exception listing every problem.</summary>
    /// <exception cref="ArgumentException">Some settings are invalid.</exception>
    public void Validate()
    {
        var errors = new List<string>();
        if (Methods is null || Methods.Count == 0) errors.Add("Methods: give at least one method.");
        else
        {
            if (Methods.Any(m => m is null)) errors.Add("Methods: a method is null.");
            foreach (var method in Methods.Where(m => m is not null))
            {
                if (string.IsNullOrWhiteSpace(method.Key) || string.IsNullOrWhiteSpace(method.Name))
                    errors.Add("Methods: every method needs a key and a name.");
                if (!TorchMetrics.AllNames.Contains(method.Metric))
                    errors.Add($"Methods: '{method.Key}' has unknown metric '{method.Metric}'; use one of {string.Join(", ", TorchMetrics.AllNames)}.");
                if (method.Strategy is not (StrategyConstants.IterativeGreedyName or StrategyConstants.OneShotName))
                    errors.Add($"Methods: '{method.Key}' has unknown strategy '{method.Strategy}'; use iterative or one-shot.");
                if (method.ConsistencyDiscriminator && !method.UsesPerturbations)
                    errors.Add($"Methods: '{method.Key}' asks for the consistency discriminator, which needs a metric with perturbation sets (pip); '{method.Metric}' has none.");
            }

            var repeated = Methods.Where(m => m is not null).GroupBy(m => m.Key).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
            if (repeated.Length > 0) errors.Add($"Methods: keys must be unique; repeated: {string.Join(", ", repeated)}.");
        }

        if (Ratios is null || Ratios.Count == 0) errors.Add("Ratios: give at least one ratio.");
        else
        {
            foreach (var r in Ratios.Where(r => !(r > 0 && r < 1)))
                errors.Add($"Ratios: {r.ToString(CultureInfo.InvariantCulture)} is not in (0, 1).");
            if (Ratios.Distinct().Count() != Ratios.Count) errors.Add("Ratios: a ratio is repeated.");
        }

        if (PerturbationSets < 1) errors.Add($"PerturbationSets: must be at least 1; got {PerturbationSets}.");
        if (Methods?.Any(m => m is { ConsistencyDiscriminator: true }) == true && PerturbationSets < 2)
            errors.Add($"PerturbationSets: the consistency discriminator needs at least 2; got {PerturbationSets}.");
        if (Norm is null || !Norms.TryGet(Norm, out _)) errors.Add($"Norm: unknown norm '{Norm}'; use one of {string.Join(", ", Norms.Names)}.");
        if (MaxTokens < 2) errors.Add($"MaxTokens: must be at least 2; got {MaxTokens}.");
        if (PerplexityDatasets is null) errors.Add("PerplexityDatasets: must not be null.");
        else
        {
            foreach (var d in PerplexityDatasets)
            {
                if (d is null || string.IsNullOrWhiteSpace(d.Path)) errors.Add("PerplexityDatasets: every dataset needs a file.");
                else if (d.Name is not (Pip.Evaluation.PerplexityDatasets.WikiText2Name or Pip.Evaluation.PerplexityDatasets.PtbName))
                    errors.Add($"PerplexityDatasets: unknown dataset '{d.Name}' ('{d.Path}'); use {Pip.Evaluation.PerplexityDatasets.WikiText2Name} or {Pip.Evaluation.PerplexityDatasets.PtbName}.");
            }

            var repeated = PerplexityDatasets.Where(d => d is not null).GroupBy(d => d.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
            if (repeated.Length > 0) errors.Add($"PerplexityDatasets: each dataset once; repeated: {string.Join(", ", repeated)}.");
        }

        if (PtbSeparator is null) errors.Add("PtbSeparator: must not be null.");
        if (Windowing is null) errors.Add("Windowing: must not be null.");
        else
        {
            try
            {
                Windowing.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                errors.Add($"Windowing: {e.Message.Split(" (Parameter", 2)[0]}");
            }
        }

        if (Tasks is null) errors.Add("Tasks: must not be null.");
        else
        {
            if (Tasks.Any(t => t is null || string.IsNullOrWhiteSpace(t.Path))) errors.Add("Tasks: every task needs a file.");
            var repeated = Tasks.Where(t => t is not null).GroupBy(t => t.DisplayName, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
            if (repeated.Length > 0) errors.Add($"Tasks: each task once; repeated: {string.Join(", ", repeated)}.");
        }

        if (MaxItems is < 1) errors.Add($"MaxItems: must be at least 1; got {MaxItems}.");
        if (!Enum.IsDefined(AccNormUnit)) errors.Add($"AccNormUnit: {(int)AccNormUnit} is not a length unit.");
        if (!Enum.IsDefined(ShownAccuracy)) errors.Add($"ShownAccuracy: {(int)ShownAccuracy} is not a choice.");
        if (ZeroShotBatchSize < 1) errors.Add($"ZeroShotBatchSize: must be at least 1; got {ZeroShotBatchSize}.");
        if (ZeroShotMaxLength is < 1) errors.Add($"ZeroShotMaxLength: must be at least 1; got {ZeroShotMaxLength}.");
        if (errors.Count > 0)
            throw new ArgumentException($"{errors.Count} invalid comparison option(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors));
    }
}
