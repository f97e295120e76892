using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Evaluation;
using Pip.Search;
using Pip.Tokenization;
using Pip.Torch.Evaluation;
using Pip.Torch.Models;
using Pip.Torch.Pruning;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Training;
using Pip.Torch.Training.Lora;
using Pip.Training;

namespace Pip.Torch.Search;

/// <summary>A model pruned with one AdaPruner configuration (owned by the caller: dispose it).</summary>
/// <param name="Model">The pruned (and, with recovery, recovered) model.</param>
/// <param name="Configuration">The configuration.</param>
/// <param name="Report">The pruning pipeline's report.</param>
/// <param name="Evaluation">The evaluation of the model.</param>
/// <param name="Recovery">The LoRA recovery's outcome, or null without recovery.</param>
public sealed record AdaPrunedModel(TorchCausalLM Model, AdaPrunerConfiguration Configuration, PruningReport Report, AdaPrunerEvaluation Evaluation,
    LoraRecoveryResult? Recovery) : IDisposable
{
    /// <summary>Disposes the model.</summary>
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// AdaPruner's objective on a <see cref="TorchCausalLM"/>: for a configuration, copy the dense model's weights into a
/// fresh model (the dense model is never pruned), draw the calibration samples the configuration names
/// (<see cref="AdaPrunerCalibration.Draw"/>), prune the copy with the configuration's metric (width: Pip's width
/// pipeline, LLM-Pruner's uniform or FLAP's adaptive allocation; depth: Pip's pipeline, PIP's iterative greedy or
/// one-shot), optionally recover it with a short LoRA run, and measure the perplexity of the held-out validation
/// tokens (lower is better).
/// </summary>
/// <remarks>
/// <para>The validation tokens must come from text that calibration (and recovery) never sees: give them from a
/// separate file and check it with <see cref="AdaPrunerCalibration.CheckDisjoint"/> (the command line does).</para>
/// <para>Evaluations run one at a time (the class serialises them); each holds one extra copy of the model. Corpus
/// lines, recovery tokens and lexicons are read once and kept.</para>
/// </remarks>
public sealed partial class TorchAdaPrunerObjective : IAdaPrunerObjective
{
    private readonly TorchAdaPrunerOptions _options;
    private readonly TokenizedCorpus _validation;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConcurrentDictionary<string, IReadOnlyList<string>> _lines = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lexicon> _lexicons = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]> _recoveryTokens = new(StringComparer.Ordinal);

    /// <summary>An objective over a dense model.</summary>
    /// <param name="dense">The dense model (not owned, never changed; it must stay alive while the objective is used).</param>
    /// <param name="validationTokens">The held-out validation tokens (for example <see cref="LoadValidationTokens"/>).</param>
    /// <param name="options">The settings, or null for the defaults.</param>
    /// <param name="loggerFactory">Logs the pipelines and the recovery, or null.</param>
    /// <exception cref="System.ComponentModel.DataAnnotations.ValidationException">The options are invalid.</exception>
    /// <exception cref="ArgumentException">The validation tokens do not fill one window, or the model has no tokenizer.</exception>
    public TorchAdaPrunerObjective(TorchCausalLM dense, IReadOnlyList<int> validationTokens, TorchAdaPrunerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(dense);
        ArgumentNullException.ThrowIfNull(validationTokens);
        _options = (options ?? new TorchAdaPrunerOptions()).Clone();
        _options.Check();
        if (dense.Tokenizer is null)
            throw new ArgumentException("The model has no tokenizer; AdaPruner needs one to turn calibration text into tokens.", nameof(dense));
        if (validationTokens.Count < _options.ValidationWindow)
            throw new ArgumentException($"The validation text gives {validationTokens.Count} tokens, fewer than one window of {_options.ValidationWindow}.", nameof(validationTokens));
        Dense = dense;
        _validation = new TokenizedCorpus("validation", [.. validationTokens], new PerplexityText("validation", "", null, 0, "tokens given"));
        _loggerFactory = loggerFactory;
        _logger = loggerFactory?.CreateLogger<TorchAdaPrunerObjective>() ?? NullLogger<TorchAdaPrunerObjective>.Instance;
    }

    /// <summary>The dense model.</summary>
    public TorchCausalLM Dense { get; }

    /// <summary>Number of validation tokens measured.</summary>
    public int ValidationTokenCount => _validation.Tokens.Count;

    /// <summary>The settings (a copy).</summary>
    public TorchAdaPrunerOptions Options => _options.Clone();

    /// <summary>The settings in words, for a report's <see cref="AdaPrunerReport.Settings"/>.</summary>
    public IReadOnlyDictionary<string, string> Describe()
    {
        static string S(double v) => v.ToString(CultureInfo.InvariantCulture);
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["objective"] = "validation perplexity of the pruned model (lower is better)",
            ["ratio"] = S(_options.Ratio),
            ["validation_tokens"] = _validation.Tokens.Count.ToString(CultureInfo.InvariantCulture),
            ["validation_window"] = _options.ValidationWindow.ToString(CultureInfo.InvariantCulture),
            ["dense_parameters"] = Dense.ParameterCount.ToString(CultureInfo.InvariantCulture),
            ["width_units"] = _options.Units.ToString().ToLowerInvariant(),
            ["width_layer_range"] = $"{_options.LayerStart?.ToString(CultureInfo.InvariantCulture) ?? "default"}..{_options.LayerEnd?.ToString(CultureInfo.InvariantCulture) ?? "default"}",
            ["depth_strategy"] = _options.OneShot ? StrategyConstants.OneShotName : StrategyConstants.IterativeGreedyName,
            ["recovery_steps"] = _options.RecoverySteps.ToString(CultureInfo.InvariantCulture),
        };
        if (_options.RecoverySteps > 0)
        {
            settings["recovery_text"] = _options.RecoveryPath ?? "the trial's calibration corpus";
            settings["recovery_batch_size"] = _options.RecoveryBatchSize.ToString(CultureInfo.InvariantCulture);
            settings["recovery_sequence_length"] = _options.RecoverySequenceLength.ToString(CultureInfo.InvariantCulture);
            settings["recovery_learning_rate"] = S(_options.RecoveryLearningRate);
            settings["lora_rank"] = _options.LoraRank.ToString(CultureInfo.InvariantCulture);
        }

        return settings;
    }

    /// <summary>
    /// Reads a validation text and tokenizes it with the model's tokenizer, keeping its first
    /// <paramref name="maxTokens"/> tokens: WikiText files (<c>*.tokens</c>, <c>*.raw</c>) are joined as the pruning papers
    /// do (<see cref="PerplexityDatasets.LoadWikiText2"/>), other files are read whole.
    /// </summary>
    /// <param name="path">The text file.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="maxTokens">The most tokens kept, or null for all.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file holds no text.</exception>
    public static IReadOnlyList<int> LoadValidationTokens(string path, HfTokenizer tokenizer, int? maxTokens = TorchAdaPrunerConstants.DefaultValidationTokens)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (maxTokens is < 2) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "Keep at least 2 validation tokens.");
        if (!File.Exists(path)) throw new FileNotFoundException($"Validation text '{path}' does not exist.", path);
        string text = path.EndsWith(".tokens", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".raw", StringComparison.OrdinalIgnoreCase)
            ? PerplexityDatasets.LoadWikiText2(path).Text
            : File.ReadAllText(path);
        if (string.IsNullOrWhiteSpace(text)) throw new InvalidDataException($"Validation text '{path}' holds no text.");
        if (maxTokens is not { } max) return tokenizer.Encode(text);

        // Tokenize a prefix that surely holds enough tokens (a token covers at most a few characters), whole if it does not.
        long prefix = Math.Min(text.Length, 32L * max);
        int[] tokens = tokenizer.Encode(text[..(int)prefix]);
        if (tokens.Length < max && prefix < text.Length) tokens = tokenizer.Encode(text);
        return tokens.Length <= max ? tokens : tokens[..max];
    }

    /// <summary>An independent copy of a model: a new module with the same configuration, type, device and weights, sharing the tokenizer.</summary>
    /// <param name="model">The model.</param>
    public static TorchCausalLM Copy(TorchCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var module = new LlamaForCausalLM(model.Config, model.Module.Dtype, model.Module.Device);
        try
        {
            module.LoadWeights(model.Module.NamedWeights());
        }
        catch
        {
            module.Dispose();
            throw;
        }

        return new TorchCausalLM(module, model.Tokenizer, model.SourceFolder);
    }

    /// <summary>The validation perplexity of the dense model.</summary>
    /// <param name="cancellationToken">Cancels the measurement.</param>
    public PerplexityResult EvaluateDense(CancellationToken cancellationToken = default) => Measure(Dense, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<AdaPrunerEvaluation> EvaluateAsync(AdaPrunerConfiguration configuration, CancellationToken cancellationToken = default)
    {
        using var pruned = await PruneAsync(configuration, null, cancellationToken).ConfigureAwait(false);
        return pruned.Evaluation;
    }

    /// <summary>
    /// Prunes a fresh copy of the dense model with a configuration (and recovers it when recovery is on), measures it,
    /// and returns it: the search calls this through <see cref="EvaluateAsync"/>, and the caller calls it once more
    /// with the best configuration to get the model to save.
    /// </summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="progress">Receives the pipeline's progress, or null.</param>
    /// <param name="cancellationToken">Cancels the work; the dense model is unchanged in any case.</param>
    /// <returns>The pruned model (the caller disposes it) with its report and evaluation.</returns>
    /// <exception cref="ArgumentException">The configuration's metric, perturber or norm is unknown, or its mode does not fit the model.</exception>
    /// <exception cref="InvalidDataException">The corpus is too small for the samples asked for.</exception>
    public async Task<AdaPrunedModel> PruneAsync(AdaPrunerConfiguration configuration, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await PruneCoreAsync(configuration, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<AdaPrunedModel> PruneCoreAsync(AdaPrunerConfiguration configuration, IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        var calibration = Calibration(configuration, cancellationToken);
        var model = Copy(Dense);
        try
        {
            long before = model.ParameterCount;
            var clock = Stopwatch.StartNew();
            PruningReport report = configuration.Mode == AdaPrunerMode.Width
                ? await BuildWidth(configuration).RunAsync(model, calibration.Samples, progress, cancellationToken).ConfigureAwait(false)
                : await BuildDepth(configuration).RunAsync(model, FitIfPerturbed(configuration, calibration, model), progress, cancellationToken).ConfigureAwait(false);
            double pruningSeconds = clock.Elapsed.TotalSeconds;

            double? beforeRecovery = null;
            LoraRecoveryResult? recovery = null;
            double recoverySeconds = 0;
            if (_options.RecoverySteps > 0)
            {
                beforeRecovery = Measure(model, cancellationToken).Perplexity;
                clock.Restart();
                recovery = await RecoverAsync(model, configuration, cancellationToken).ConfigureAwait(false);
                recoverySeconds = clock.Elapsed.TotalSeconds;
            }

            clock.Restart();
            var perplexity = Measure(model, cancellationToken);
            var evaluation = new AdaPrunerEvaluation
            {
                Objective = double.IsNaN(perplexity.Perplexity) ? double.PositiveInfinity : perplexity.Perplexity,
                ObjectiveBeforeRecovery = beforeRecovery,
                ParametersBefore = before,
                ParametersAfter = model.ParameterCount,
                PruningSeconds = pruningSeconds,
                RecoverySeconds = recoverySeconds,
                EvaluationSeconds = clock.Elapsed.TotalSeconds,
                Seconds = total.Elapsed.TotalSeconds,
            };
            Log.Evaluated(_logger, configuration.Key, evaluation.Objective, evaluation.RemovedParameterRatio, evaluation.Seconds);
            return new AdaPrunedModel(model, configuration, report, evaluation, recovery);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private CalibrationSet Calibration(AdaPrunerConfiguration configuration, CancellationToken cancellationToken)
    {
        var lines = _lines.GetOrAdd(Path.GetFullPath(configuration.CorpusPath), p => AdaPrunerCalibration.ReadLines(p, cancellationToken));
        return AdaPrunerCalibration.Draw(lines, configuration.SampleCount, configuration.SequenceLength, configuration.CalibrationSeed, configuration.CorpusPath);
    }

    private static CalibrationSet FitIfPerturbed(AdaPrunerConfiguration configuration, CalibrationSet calibration, TorchCausalLM model) =>
        configuration.UsesPerturber ? Comparison.FitCalibrationToTokens(calibration, model, configuration.SequenceLength) : calibration;

    private PipelineOptions PipelineOptions(AdaPrunerConfiguration configuration) => new()
    {
        Target = PruningTarget.Ratio(_options.Ratio),
        Seed = configuration.CalibrationSeed,
        PerturbationSets = _options.PerturbationSets,
        Norm = configuration.Norm ?? PipelineConstants.DefaultNorm,
        RecordTokenIds = false,
    };

    private WidthPruningPipeline BuildWidth(AdaPrunerConfiguration configuration)
    {
        if (!TorchWidthMetrics.AllNames.Contains(configuration.Metric))
            throw new ArgumentException($"'{configuration.Metric}' is not a width metric; use one of {string.Join(", ", TorchWidthMetrics.AllNames)}.", nameof(configuration));
        return new WidthPipelineBuilder()
            .Configure(PipelineOptions(configuration))
            .ConfigureWidth(new WidthPruningOptions
            {
                Units = _options.Units,
                Allocation = configuration.Allocation ?? WidthAllocation.Uniform,
                LayerStart = _options.LayerStart,
                LayerEnd = _options.LayerEnd,
            })
            .UseWidthMetric(configuration.Metric, new WidthMetricOptions
            {
                GroupReduction = configuration.GroupReduction ?? WidthGroupReduction.Sum,
                MaxTokens = configuration.SequenceLength,
            })
            .UseLoggerFactory(_loggerFactory)
            .Build();
    }

    private PruningPipeline BuildDepth(AdaPrunerConfiguration configuration)
    {
        if (!TorchMetrics.AllNames.Contains(configuration.Metric))
            throw new ArgumentException($"'{configuration.Metric}' is not a depth metric; use one of {string.Join(", ", TorchMetrics.AllNames)}.", nameof(configuration));
        var builder = new PipelineBuilder()
            .Configure(PipelineOptions(configuration))
            .UseMetric(configuration.Metric, new TorchMetricOptions
            {
                Norm = configuration.Norm ?? PipelineConstants.DefaultNorm,
                MaxTokens = configuration.SequenceLength,
            })
            .UseLoggerFactory(_loggerFactory);
        if (_options.OneShot) builder.UseOneShot();
        else builder.UseIterativeGreedy(new IterativeGreedyStrategyOptions());
        if (configuration.UsesPerturber)
        {
            switch (configuration.Perturber ?? PerturbationConstants.LexiconPerturberName)
            {
                case PerturbationConstants.RandomCharPerturberName:
                    builder.UseRandomCharPerturber();
                    break;
                case PerturbationConstants.LexiconPerturberName:
                    var lexicon = _lexicons.GetOrAdd(Path.GetFullPath(configuration.CorpusPath), p => Lexicon.FromFile(p));
                    builder.UseLexiconPerturber(new LexiconPerturberOptions { Lexicon = lexicon });
                    break;
                default:
                    throw new ArgumentException($"Unknown perturber '{configuration.Perturber}'; use {PerturbationConstants.LexiconPerturberName} or {PerturbationConstants.RandomCharPerturberName}.", nameof(configuration));
            }
        }

        return builder.Build();
    }

    private async Task<LoraRecoveryResult> RecoverAsync(TorchCausalLM model, AdaPrunerConfiguration configuration, CancellationToken cancellationToken)
    {
        int steps = _options.RecoverySteps;
        var training = new TrainingOptions
        {
            LearningRate = _options.RecoveryLearningRate,
            MaxSteps = steps,
            WarmupSteps = Math.Min(LoraConstants.DefaultWarmupSteps, steps / 10),
            BatchSize = _options.RecoveryBatchSize,
            WeightDecay = 0,
            Beta2 = 0.999,
            EvaluateEvery = 0,
            LogEvery = 0,
            Seed = _options.RecoverySeed,
        };
        var lora = new LoraOptions
        {
            Rank = _options.LoraRank,
            Alpha = 2.0 * _options.LoraRank,
            Dropout = 0,
            Seed = _options.RecoverySeed,
            Training = training,
            MergeAfterTraining = true,
            ResumeFromCheckpoint = false,
        };
        var path = Path.GetFullPath(_options.RecoveryPath ?? configuration.CorpusPath);
        int needed = steps * _options.RecoveryBatchSize * _options.RecoverySequenceLength + 1;
        var tokens = _recoveryTokens.GetOrAdd(path, p => RecoveryTokens(p, model.Tokenizer!, needed, cancellationToken));
        if (tokens.Length < _options.RecoveryBatchSize * _options.RecoverySequenceLength + 1)
            throw new InvalidDataException($"Recovery text '{path}' gives {tokens.Length} tokens, fewer than one batch of {_options.RecoveryBatchSize} × {_options.RecoverySequenceLength}.");
        var train = new PackedSequences(tokens, _options.RecoverySequenceLength);
        return await LoraRecovery.RunAsync(model, train, null, lora, null, _loggerFactory?.CreateLogger("Pip.AdaPruner.Recovery"), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The first tokens of a text: each non-empty line tokenized (with BOS when the tokenizer adds one) and followed by EOS when there is one.</summary>
    private static int[] RecoveryTokens(string path, HfTokenizer tokenizer, int needed, CancellationToken cancellationToken)
    {
        var tokens = new List<int>(needed);
        foreach (var line in AdaPrunerCalibration.ReadLines(path, cancellationToken))
        {
            tokens.AddRange(tokenizer.Encode(line));
            if (tokenizer.EosTokenId is { } eos) tokens.Add(eos);
            if (tokens.Count >= needed) break;
        }

        return [.. tokens];
    }

    private PerplexityResult Measure(TorchCausalLM model, CancellationToken cancellationToken) =>
        CorpusPerplexity.Evaluate(model.Module, _validation, new CorpusWindowing { Window = _options.ValidationWindow, BatchSize = _options.ValidationBatchSize },
            null, cancellationToken);

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "AdaPruner: {Configuration}: validation perplexity {Perplexity:G6}, {Removed:P2} of the parameters removed, {Seconds:F1} s.")]
        public static partial void Evaluated(ILogger logger, string configuration, double perplexity, double removed, double seconds);
    }
}
