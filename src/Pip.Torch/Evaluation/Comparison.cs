using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Evaluation;
using Pip.Torch.Pruning;
using Pip.Torch.Streaming;

namespace Pip.Torch.Evaluation;

/// <summary>What a comparison is doing.</summary>
public enum ComparisonStage
{
    /// <summary>Loading a fresh copy of the model.</summary>
    Loading,

    /// <summary>Pruning (<see cref="ComparisonProgress.Item"/> names the round and the pipeline's stage).</summary>
    Pruning,

    /// <summary>Evaluating perplexity on a dataset (<see cref="ComparisonProgress.Item"/>); Done/Total count windows.</summary>
    Perplexity,

    /// <summary>Evaluating a zero-shot task (<see cref="ComparisonProgress.Item"/>); Done/Total count items.</summary>
    ZeroShot,

    /// <summary>A run is finished; <see cref="ComparisonProgress.CompletedRow"/> holds its row.</summary>
    RunCompleted,
}

/// <summary>Progress of a comparison.</summary>
/// <param name="Run">The run: 0 for the dense baseline, then 1 … <paramref name="RunCount"/> − 1.</param>
/// <param name="RunCount">Runs in all, the dense one included.</param>
/// <param name="Method">The method's display name (<c>Dense</c> for the baseline).</param>
/// <param name="Ratio">The target ratio, or null for the baseline.</param>
/// <param name="Stage">What the run is doing.</param>
/// <param name="Item">The dataset, task or pruning step, or null.</param>
/// <param name="Done">Work units of the stage done.</param>
/// <param name="Total">Work units of the stage.</param>
/// <param name="CompletedRow">The finished row when <paramref name="Stage"/> is <see cref="ComparisonStage.RunCompleted"/>.</param>
public sealed record ComparisonProgress(int Run, int RunCount, string Method, double? Ratio, ComparisonStage Stage, string? Item, int Done, int Total,
    ComparisonRow? CompletedRow = null);

/// <summary>
/// Compares pruning methods as the PIP paper's Table 2 (and, with <see cref="ComparisonMethods.Ablation"/>, Table 3):
/// for every method and ratio a fresh copy of the model is loaded, pruned with the same calibration set and evaluated
/// (perplexity per dataset, zero-shot accuracy per task); the dense model is evaluated the same way.
/// </summary>
/// <remarks>
/// <para>Every run builds its pipeline as <c>pip-prune prune</c> would: <c>PipelineBuilder.Configure(Target = Ratio(r),
/// Seed, PerturbationSets, Norm)</c>, <c>UseMetric(metric, TorchMetricOptions{Norm, MaxTokens})</c>, <c>UseOneShot()</c>
/// or <c>UseIterativeGreedy()</c>, the lexicon perturber for PertImport (its lexicon from the calibration file), and
/// <c>AddConsistencyDiscriminator()</c> where the method asks for it.</para>
/// <para>Perplexity: each dataset is read as <see cref="PerplexityDatasets"/> documents, tokenized once with the model's
/// tokenizer and evaluated with <see cref="CorpusPerplexity"/> (default: 128-token non-overlapping windows, last partial
/// window dropped). Zero-shot: <see cref="ZeroShotEvaluator"/> with <see cref="TorchLoglikelihoodScorer"/>.</para>
/// <para>Work is synchronous on the calling thread; cancellation is checked between runs, windows, items and inside
/// pruning.</para>
/// </remarks>
public static class Comparison
{
    /// <summary>The key and name of the dense row.</summary>
    public const string DenseKey = "dense";

    /// <summary>The display name of the dense row.</summary>
    public const string DenseName = "Dense";

    /// <summary>Runs a comparison on a Hugging Face model folder (loaded afresh for every run).</summary>
    /// <param name="modelFolder">The model folder; it must have a tokenizer.</param>
    /// <param name="calibration">The calibration set every method uses.</param>
    /// <param name="options">What to run.</param>
    /// <param name="progress">Receives progress synchronously, or null.</param>
    /// <param name="loggerFactory">Logs the runs (and the pipelines), or null.</param>
    /// <param name="cancellationToken">Cancels the comparison.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">The options are invalid (every problem listed), or the calibration set is empty.</exception>
    /// <exception cref="FileNotFoundException">A dataset or task file is missing; the message names it.</exception>
    public static Task<ComparisonResult> RunAsync(string modelFolder, CalibrationSet calibration, ComparisonOptions options,
        IProgress<ComparisonProgress>? progress = null, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelFolder);
        ArgumentNullException.ThrowIfNull(options);
        var folder = Path.GetFullPath(modelFolder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");
        var dtype = options.Dtype;
        var device = options.Device;
        return RunAsync(() => TorchCausalLM.Load(folder, dtype, device), folder, calibration, options, progress, loggerFactory, cancellationToken);
    }

    /// <summary>Runs a comparison on a model made by a factory (called once per run; each model is disposed after its run).</summary>
    /// <param name="loadModel">Makes a fresh copy of the dense model, with its tokenizer.</param>
    /// <param name="modelName">The name the result gives the model.</param>
    /// <param name="calibration">The calibration set every method uses.</param>
    /// <param name="options">What to run (<see cref="ComparisonOptions.Dtype"/> and <see cref="ComparisonOptions.Device"/> are the factory's business).</param>
    /// <param name="progress">Receives progress synchronously, or null.</param>
    /// <param name="loggerFactory">Logs the runs (and the pipelines), or null.</param>
    /// <param name="cancellationToken">Cancels the comparison.</param>
    /// <returns>The result.</returns>
    public static Task<ComparisonResult> RunAsync(Func<TorchCausalLM> loadModel, string modelName, CalibrationSet calibration, ComparisonOptions options,
        IProgress<ComparisonProgress>? progress = null, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(loadModel);
        return RunCoreAsync(() => new RunModel(loadModel(), null, null), modelName, calibration, options, progress, loggerFactory, cancellationToken);
    }

    /// <summary>
    /// Runs a comparison on a Hugging Face model folder opened for streaming for every run (see
    /// <see cref="StreamedCausalLM"/>: one decoder layer in memory at a time): pruning on the layer engine, perplexity
    /// with <see cref="LayerEngine.Perplexity"/> over the same windows as in memory. Every comparison method removes
    /// whole layers, which a streamed model records; zero-shot tasks need the model in memory and are refused.
    /// </summary>
    /// <param name="modelFolder">The model folder (Llama layout, safetensors); it must have a tokenizer.</param>
    /// <param name="calibration">The calibration set every method uses.</param>
    /// <param name="options">What to run (<see cref="ComparisonOptions.Dtype"/> and <see cref="ComparisonOptions.Device"/> are the streamed compute type and device).</param>
    /// <param name="streaming">Further streaming options (head chunk, spill); null for the defaults. Its type and device are replaced by the options'.</param>
    /// <param name="progress">Receives progress synchronously, or null.</param>
    /// <param name="loggerFactory">Logs the runs (and the pipelines), or null.</param>
    /// <param name="cancellationToken">Cancels the comparison.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">The options are invalid, they name zero-shot tasks, or the calibration set is empty.</exception>
    /// <exception cref="NotSupportedException">The model is not Llama-layout and cannot be streamed.</exception>
    public static Task<ComparisonResult> RunStreamedAsync(string modelFolder, CalibrationSet calibration, ComparisonOptions options, StreamingOptions? streaming = null,
        IProgress<ComparisonProgress>? progress = null, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelFolder);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Tasks.Count > 0)
            throw new ArgumentException("Zero-shot tasks need the model in memory; a streamed comparison evaluates perplexity only. Leave the tasks out or load the model in memory.", nameof(options));
        var folder = Path.GetFullPath(modelFolder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");
        var open = new StreamingOptions
        {
            ComputeType = options.Dtype,
            Device = options.Device,
            HeadChunkBytes = streaming?.HeadChunkBytes ?? new StreamingOptions().HeadChunkBytes,
            SpillThresholdBytes = streaming?.SpillThresholdBytes ?? new StreamingOptions().SpillThresholdBytes,
            SpillDirectory = streaming?.SpillDirectory,
        };
        return RunCoreAsync(() => new RunModel(null, StreamedCausalLM.Open(folder, open), options.Device), folder, calibration, options, progress, loggerFactory, cancellationToken);
    }

    private static async Task<ComparisonResult> RunCoreAsync(Func<RunModel> loadModel, string modelName, CalibrationSet calibration, ComparisonOptions options,
        IProgress<ComparisonProgress>? progress, ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (calibration.Samples.Count == 0) throw new ArgumentException("The calibration set is empty: a comparison needs at least one sample.", nameof(calibration));

        var logger = (ILogger?)loggerFactory?.CreateLogger(typeof(Comparison).FullName!) ?? NullLogger.Instance;
        var startedAt = DateTimeOffset.UtcNow;
        var wall = Stopwatch.StartNew();
        ComparisonMethod[] methods = [.. options.Methods];
        double[] ratios = [.. options.Ratios.Order()];
        var windowing = options.Windowing;

        // Inputs first: a missing file fails before any model work.
        var texts = options.PerplexityDatasets.Select(d => d.Name == PerplexityDatasets.PtbName
            ? PerplexityDatasets.LoadPtb(d.Path, options.PtbSeparator)
            : PerplexityDatasets.LoadWikiText2(d.Path)).ToArray();
        var tasks = options.Tasks.Select(t => LoadTask(t, options.MaxItems)).ToArray();

        int runCount = 1 + methods.Length * ratios.Length;
        var context = new RunContext(options, windowing, progress, logger, runCount, cancellationToken);

        // The dense model: tokenizes the corpora, fits the calibration set, gives the baseline row.
        ComparisonRow dense;
        TokenizedCorpus[] corpora;
        CalibrationSet fitted;
        string architecture, dtypeName, deviceName;
        int originalLayers;
        long originalParameters;
        {
            progress?.Report(new ComparisonProgress(0, runCount, DenseName, null, ComparisonStage.Loading, null, 0, 1));
            ComparisonLog.DenseStarting(logger, runCount - 1, methods.Length, ratios.Length);
            using var model = loadModel();
            var tokenizer = model.Tokenizer
                ?? throw new InvalidOperationException($"The model{(model.SourceFolder is { } f ? $" in '{f}'" : "")} has no tokenizer.json; a comparison needs one.");
            architecture = model.Architecture;
            originalLayers = model.LayerCount;
            originalParameters = model.ParameterCount;
            dtypeName = model.DtypeName;
            deviceName = model.DeviceName;
            corpora = [.. texts.Select(t => CorpusPerplexity.Tokenize(t, tokenizer))];
            foreach (var c in corpora)
            {
                ComparisonLog.Tokenized(logger, c.Name, c.Source.SourcePath ?? "", c.Tokens.Count, CorpusPerplexity.EvaluatedTokens(c.Tokens, windowing).Count);
            }

            fitted = options.FitCalibrationToMaxTokens ? FitCalibrationToTokens(calibration, model.Prunable, options.MaxTokens) : calibration;
            context = context with { Corpora = corpora, Tasks = tasks };
            var clock = Stopwatch.StartNew();
            var evaluation = Evaluate(model, context, 0, DenseName, null);
            context.Evaluations[""] = (evaluation, DenseKey);
            dense = new ComparisonRow
            {
                MethodKey = DenseKey,
                Method = DenseName,
                RemovedLayers = [],
                LayerCount = model.LayerCount,
                ParameterCount = model.ParameterCount,
                RemovedParameterRatio = 0,
                WeightGiB = model.WeightGiB,
                Perplexity = evaluation.Perplexity,
                Tasks = evaluation.Tasks,
                AverageAccuracy = evaluation.Average,
                EvaluationSeconds = clock.Elapsed.TotalSeconds,
            };
            ComparisonLog.DenseCompleted(logger, runCount - 1, Describe(evaluation));
            progress?.Report(new ComparisonProgress(0, runCount, DenseName, null, ComparisonStage.RunCompleted, null, 1, 1, dense));
        }

        var rows = new List<ComparisonRow>();
        var importance = new List<LayerImportance>();
        int run = 0;
        foreach (var method in methods)
        {
            LayerImportance? methodImportance = null;
            foreach (var ratio in ratios)
            {
                cancellationToken.ThrowIfCancellationRequested();
                run++;
                var row = await RunOneAsync(loadModel, method, ratio, fitted, originalParameters, context, run, loggerFactory).ConfigureAwait(false);
                rows.Add(row);
                if (methodImportance is null && row.Report is { Rounds.Count: > 0 } report)
                {
                    var first = report.Rounds[0];
                    methodImportance = new LayerImportance(method.Key, method.Name, method.Metric, first.OriginalLayerIndices, first.Scores, LayerImportance.Normalize(first.Scores));
                }
            }

            if (methodImportance is null) ComparisonLog.NoImportance(logger, method.Name);
            else importance.Add(methodImportance);
        }

        var setup = new ComparisonSetup
        {
            Methods = methods,
            Ratios = ratios,
            Seed = options.Seed,
            PerturbationSets = options.PerturbationSets,
            Norm = options.Norm,
            MaxTokens = options.MaxTokens,
            CalibrationSource = fitted.SourcePath,
            CalibrationSamples = [.. fitted.Samples.Select(s => s.Text)],
            Windowing = windowing.ToString(),
            Window = windowing.Window,
            Stride = windowing.Stride,
            Datasets = [.. corpora.Select(c => new ComparisonDataset(c.Name, c.Source.SourcePath, c.Source.Rows, c.Source.Join, c.Tokens.Count,
                CorpusPerplexity.EvaluatedTokens(c.Tokens, windowing).Count))],
            Tasks = [.. tasks.Select(t => new ComparisonTask(t.Task.Name, t.Path, t.Task.Items.Count))],
            ShownAccuracy = options.ShownAccuracy,
            Dtype = dtypeName,
            Device = deviceName,
        };
        return new ComparisonResult
        {
            Model = modelName,
            Architecture = architecture,
            OriginalLayerCount = originalLayers,
            OriginalParameterCount = originalParameters,
            StartedAt = startedAt,
            WallSeconds = wall.Elapsed.TotalSeconds,
            Setup = setup,
            Dense = dense,
            Rows = rows,
            Importance = importance,
        };
    }

    /// <summary>
    /// Cuts every calibration sample that tokenizes to more than <paramref name="maxTokens"/> tokens at the last word
    /// boundary (whitespace) whose prefix fits; a sample whose first word alone does not fit is kept whole (the
    /// metrics cut its tokens). Samples that fit are kept as they are.
    /// </summary>
    /// <param name="calibration">The calibration set.</param>
    /// <param name="model">The model whose tokenizer counts.</param>
    /// <param name="maxTokens">The most tokens per sample.</param>
    /// <returns>The fitted set (same indices and source file).</returns>
    public static CalibrationSet FitCalibrationToTokens(CalibrationSet calibration, IPrunableModel model, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 1);
        return new CalibrationSet([.. calibration.Samples.Select(s => new CalibrationSample(s.Index, Fit(s.Text)))], calibration.SourcePath);

        string Fit(string text)
        {
            if (model.Tokenize(text).Count <= maxTokens) return text;
            var ends = new List<int>();
            for (int i = 1; i < text.Length; i++)
            {
                if (char.IsWhiteSpace(text[i]) && !char.IsWhiteSpace(text[i - 1])) ends.Add(i);
            }

            int lo = 0, hi = ends.Count - 1, best = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                if (model.Tokenize(text[..ends[mid]]).Count <= maxTokens)
                {
                    best = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            return best < 0 ? text : text[..ends[best]];
        }
    }

    private static async Task<ComparisonRow> RunOneAsync(Func<RunModel> loadModel, ComparisonMethod method, double ratio, CalibrationSet calibration,
        long originalParameters, RunContext context, int run, ILoggerFactory? loggerFactory)
    {
        var ct = context.CancellationToken;
        context.Progress?.Report(new ComparisonProgress(run, context.RunCount, method.Name, ratio, ComparisonStage.Loading, null, 0, 1));
        var ratioText = ratio.ToString("0.###", CultureInfo.InvariantCulture);
        ComparisonLog.RunStarting(context.Logger, run, context.RunCount - 1, method.Name, method.Metric, method.Strategy, ratioText);
        using var model = loadModel();
        var pipeline = CreateBuilder(method, ratio, context.Options).UseLoggerFactory(loggerFactory).Build();
        var clock = Stopwatch.StartNew();
        var pruningProgress = context.Progress is null ? null : new PruningProgressAdapter(context.Progress, run, context.RunCount, method.Name, ratio);
        var report = await pipeline.RunAsync(model.Prunable, calibration, pruningProgress, ct).ConfigureAwait(false);
        var pruningSeconds = clock.Elapsed.TotalSeconds;
        if (report.RemovedOriginalLayers.Count == 0) ComparisonLog.NothingRemoved(context.Logger, method.Name, ratioText, report.StopReason);

        clock.Restart();
        var removedKey = string.Join(",", report.RemovedOriginalLayers.Order());
        Evaluation evaluation;
        string? reusedFrom = null;
        if (context.Evaluations.TryGetValue(removedKey, out var earlier))
        {
            (evaluation, reusedFrom) = earlier;
            ComparisonLog.EvaluationReused(context.Logger, run, context.RunCount - 1, method.Name, ratioText, removedKey, reusedFrom);
        }
        else
        {
            evaluation = Evaluate(model, context, run, method.Name, ratio);
            context.Evaluations[removedKey] = (evaluation, $"{method.Key}@{ratioText}");
        }

        var row = new ComparisonRow
        {
            MethodKey = method.Key,
            Method = method.Name,
            Metric = method.Metric,
            Strategy = method.Strategy,
            ConsistencyDiscriminator = method.ConsistencyDiscriminator,
            TargetRatio = ratio,
            RemovedLayers = report.RemovedOriginalLayers,
            LayerCount = model.LayerCount,
            ParameterCount = model.ParameterCount,
            RemovedParameterRatio = originalParameters == 0 ? 0 : (double)(originalParameters - model.ParameterCount) / originalParameters,
            WeightGiB = model.WeightGiB,
            Perplexity = evaluation.Perplexity,
            Tasks = evaluation.Tasks,
            AverageAccuracy = evaluation.Average,
            StopReason = report.StopReason,
            TargetReached = report.TargetReached,
            PruningSeconds = pruningSeconds,
            EvaluationSeconds = reusedFrom is null ? clock.Elapsed.TotalSeconds : 0,
            EvaluationReusedFrom = reusedFrom,
            Report = report,
        };
        ComparisonLog.RunCompleted(context.Logger, run, context.RunCount - 1, method.Name, ratioText,
            string.Join(",", report.RemovedOriginalLayers.Order()), Describe(evaluation));
        context.Progress?.Report(new ComparisonProgress(run, context.RunCount, method.Name, ratio, ComparisonStage.RunCompleted, null, 1, 1, row));
        return row;
    }

    /// <summary>The pipeline builder of one method at one ratio, as the comparison configures it.</summary>
    /// <param name="method">The method.</param>
    /// <param name="ratio">The target parameter ratio.</param>
    /// <param name="options">The shared settings.</param>
    /// <returns>The builder, not yet built (add a logger factory, then build).</returns>
    public static PipelineBuilder CreateBuilder(ComparisonMethod method, double ratio, ComparisonOptions options)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(options);
        var builder = new PipelineBuilder()
            .Configure(new PipelineOptions
            {
                Target = PruningTarget.Ratio(ratio),
                Seed = options.Seed,
                PerturbationSets = options.PerturbationSets,
                Norm = options.Norm,
                RecordTokenIds = options.RecordTokenIds,
            })
            .UseMetric(method.Metric, new TorchMetricOptions { Norm = options.Norm, MaxTokens = options.MaxTokens });
        if (method.Strategy == StrategyConstants.OneShotName) builder.UseOneShot();
        else builder.UseIterativeGreedy(new IterativeGreedyStrategyOptions());
        if (method.UsesPerturbations) builder.UseLexiconPerturber(new LexiconPerturberOptions());
        if (method.ConsistencyDiscriminator) builder.AddConsistencyDiscriminator(new ConsistencyDiscriminatorOptions());
        return builder;
    }

    private static (MultipleChoiceTask Task, string Path) LoadTask(ZeroShotTaskFile file, int? maxItems)
    {
        var full = Path.GetFullPath(file.Path);
        var name = file.DisplayName;
        if (Directory.Exists(full)) throw new FileNotFoundException($"Task file '{full}' ({name}) is a folder; pass the JSONL file itself.", full);
        if (!File.Exists(full)) throw new FileNotFoundException($"Task file '{full}' ({name}) does not exist.", full);
        var task = ZeroShotTasks.Load(file.Kind, full, maxItems);
        return (file.Label is null ? task : task with { Name = name }, full);
    }

    private sealed record Evaluation(IReadOnlyList<DatasetPerplexity> Perplexity, IReadOnlyList<TaskAccuracy> Tasks, double? Average);

    private static Evaluation Evaluate(RunModel model, RunContext context, int run, string method, double? ratio)
    {
        var ct = context.CancellationToken;
        var perplexities = new List<DatasetPerplexity>();
        foreach (var corpus in context.Corpora)
        {
            ct.ThrowIfCancellationRequested();
            var windowProgress = context.Progress is null ? null : new Forward<PerplexityProgress>(p =>
                context.Progress.Report(new ComparisonProgress(run, context.RunCount, method, ratio, ComparisonStage.Perplexity, corpus.Name, p.WindowsDone, p.WindowsTotal)));
            var result = model.Perplexity(corpus, context.Windowing, windowProgress, ct);
            perplexities.Add(new DatasetPerplexity(corpus.Name, result.Perplexity, result.Nll, result.TokenCount, result.Windows));
        }

        var accuracies = new List<TaskAccuracy>();
        if (context.Tasks.Count > 0)
        {
            var scorer = new TorchLoglikelihoodScorer(model.Resident ?? throw new InvalidOperationException("Zero-shot tasks need the model in memory."), context.Options.ZeroShotMaxLength, context.Options.ZeroShotBatchSize);
            foreach (var (task, _) in context.Tasks)
            {
                ct.ThrowIfCancellationRequested();
                var itemProgress = context.Progress is null ? null : new Forward<ZeroShotProgress>(p =>
                    context.Progress.Report(new ComparisonProgress(run, context.RunCount, method, ratio, ComparisonStage.ZeroShot, p.Task, p.ItemsDone, p.ItemsTotal)));
                var result = ZeroShotEvaluator.EvaluateTask(task, scorer, context.Options.AccNormUnit, itemProgress, ct);
                var shown = context.Options.ShownAccuracy == ShownAccuracy.Acc ? result.Acc : result.AccNormOrAcc;
                accuracies.Add(new TaskAccuracy(result.Task, result.Count, result.Acc, result.AccStderr, result.AccNorm, result.AccNormStderr, shown));
            }
        }

        return new Evaluation(perplexities, accuracies, accuracies.Count == 0 ? null : accuracies.Average(a => a.Shown));
    }

    private static string Describe(Evaluation evaluation)
    {
        var parts = evaluation.Perplexity.Select(p => $"{p.Dataset} PPL {p.Perplexity.ToString("F3", CultureInfo.InvariantCulture)}")
            .Concat(evaluation.Tasks.Select(t => $"{t.Task} {(100 * t.Shown).ToString("F1", CultureInfo.InvariantCulture)}"));
        if (evaluation.Average is { } avg) parts = parts.Append($"avg {(100 * avg).ToString("F1", CultureInfo.InvariantCulture)}");
        var text = string.Join(", ", parts);
        return text.Length == 0 ? "no evaluation" : text;
    }

    private sealed record RunContext(ComparisonOptions Options, CorpusWindowing Windowing, IProgress<ComparisonProgress>? Progress, ILogger Logger,
        int RunCount, CancellationToken CancellationToken)
    {
        public IReadOnlyList<TokenizedCorpus> Corpora { get; init; } = [];

        public IReadOnlyList<(MultipleChoiceTask Task, string Path)> Tasks { get; init; } = [];

        /// <summary>Evaluations by removed original layers (sorted, comma-separated): depth pruning that removes the same
        /// layers of the same model gives the same weights, so each distinct model is evaluated once.</summary>
        public Dictionary<string, (Evaluation Evaluation, string Source)> Evaluations { get; } = new(StringComparer.Ordinal);
    }

    private sealed class Forward<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    private sealed class PruningProgressAdapter(IProgress<ComparisonProgress> progress, int run, int runCount, string method, double ratio) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) =>
            progress.Report(new ComparisonProgress(run, runCount, method, ratio, ComparisonStage.Pruning,
                $"round {value.Round} {value.Stage.ToString().ToLowerInvariant()}", value.Completed, value.Total));
    }

    /// <summary>One run's model: loaded in memory or opened for streaming. Owns it.</summary>
    private sealed class RunModel(TorchCausalLM? resident, StreamedCausalLM? streamed, TorchSharp.torch.Device? device) : IDisposable
    {
        public TorchCausalLM? Resident => resident;

        public IPrunableModel Prunable => (IPrunableModel?)resident ?? streamed!;

        public Pip.Tokenization.HfTokenizer? Tokenizer => resident is null ? streamed!.Tokenizer : resident.Tokenizer;

        public string? SourceFolder => resident is null ? streamed!.SourceFolder : resident.SourceFolder;

        public string Architecture => Prunable.Architecture;

        public int LayerCount => Prunable.LayerCount;

        public long ParameterCount => Prunable.ParameterCount;

        public string DtypeName => (resident?.Model.Dtype ?? streamed!.ComputeType).ToString().ToLowerInvariant();

        public string DeviceName => resident?.Model.Device.ToString() ?? (device ?? TorchSharp.torch.CPU).ToString();

        /// <summary>The weights' size in the compute type: as measured in memory, or the streamed model's parameters at its compute type's size.</summary>
        public double WeightGiB => resident is not null
            ? ModelStatisticsMeter.Size(resident.Model).WeightGiB
            : streamed!.ParameterCount * (double)(streamed.ComputeType == TorchSharp.torch.ScalarType.Float32 ? 4 : 2) / (1L << 30);

        public PerplexityResult Perplexity(TokenizedCorpus corpus, CorpusWindowing windowing, IProgress<PerplexityProgress>? progress, CancellationToken ct)
        {
            if (resident is not null) return CorpusPerplexity.Evaluate(resident.Model, corpus, windowing, progress, ct);
            var tokens = CorpusPerplexity.EvaluatedTokens(corpus.Tokens, windowing);
            if (tokens.Count < 2)
            {
                var where = corpus.Source.SourcePath is { } p ? $" ('{p}')" : "";
                throw new ArgumentException($"Corpus '{corpus.Name}'{where} gives {corpus.Tokens.Count} tokens, too few to evaluate with {windowing}; use a shorter window or a longer text.", nameof(corpus));
            }

            return streamed!.Engine.Perplexity([tokens], windowing.Window, windowing.Stride, Math.Max(2, windowing.BatchSize * windowing.Window), progress, ct);
        }

        public void Dispose()
        {
            resident?.Dispose();
            streamed?.Dispose();
        }
    }
}

/// <summary>Log messages of <see cref="Comparison"/>.</summary>
internal static partial class ComparisonLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Tokenized {Dataset} ({Path}): {Tokens} tokens, {Evaluated} evaluated.")]
    public static partial void Tokenized(ILogger logger, string dataset, string path, int tokens, int evaluated);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Run 0/{Runs}: evaluating the dense model (then {Methods} methods x {Ratios} ratios, each on a fresh copy).")]
    public static partial void DenseStarting(ILogger logger, int runs, int methods, int ratios);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Run 0/{Runs}: the dense model: {Results}.")]
    public static partial void DenseCompleted(ILogger logger, int runs, string results);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Run {Run}/{Runs}: {Method} ({Metric}, {Strategy}) at ratio {Ratio}.")]
    public static partial void RunStarting(ILogger logger, int run, int runs, string method, string metric, string strategy, string ratio);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Run {Run}/{Runs}: {Method} at ratio {Ratio} removed layers [{Layers}]: {Results}.")]
    public static partial void RunCompleted(ILogger logger, int run, int runs, string method, string ratio, string layers, string results);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "{Method} at ratio {Ratio} removed no layer ({Reason}); its row is the dense model's.")]
    public static partial void NothingRemoved(ILogger logger, string method, string ratio, PruningStopReason reason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Run {Run}/{Runs}: {Method} at ratio {Ratio} removed layers [{Layers}] as {Source} did: its evaluation is reused.")]
    public static partial void EvaluationReused(ILogger logger, int run, int runs, string method, string ratio, string layers, string source);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "{Method}: no run scored the dense model (no layer fits any ratio); its layer importance is left out.")]
    public static partial void NoImportance(ILogger logger, string method);
}
