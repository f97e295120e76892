using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pip.Checkpoints;
using Pip.Cli.Infrastructure;
using Pip.Torch;
using Pip.Torch.Checkpoints;
using Pip.Torch.Pruning;
using Pip.Torch.Pruning.Width;
using static TorchSharp.torch;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>prune</c>: removes whole decoder layers of a model with a Pip pipeline (PIP's PertImport or a baseline metric),
/// or, with <c>--mode width</c>, attention key/value groups and MLP channels inside the layers (LLM-Pruner's Taylor
/// metrics, Wanda-sp, FLAP, magnitude or random); saves the pruned model and the JSON report of the run, and prints a
/// summary.
/// </summary>
/// <remarks>
/// Everything that can be checked before the long work is checked first: the output folder and report file, every
/// option (all problems listed at once, exit code 2), the calibration file and the model. The model folder and the
/// default report inside it are written together, atomically, at the end; a cancelled run writes nothing.
/// </remarks>
internal static class PruneCommand
{
    /// <summary>The report's file name inside the output folder when <c>--report</c> is not given.</summary>
    public const string DefaultReportName = "pruning-report.json";

    /// <summary>The <c>--strategy</c> values.</summary>
    public static readonly IReadOnlyList<string> StrategyNames = [StrategyConstants.IterativeGreedyName, StrategyConstants.OneShotName];

    /// <summary>The <c>--perturber</c> values.</summary>
    public static readonly IReadOnlyList<string> PerturberNames = [PerturbationConstants.LexiconPerturberName, PerturbationConstants.RandomCharPerturberName];

    /// <summary>The <c>--aggregation</c> values.</summary>
    public static readonly IReadOnlyList<string> AggregationNames = ["per-sample", "summed"];

    /// <summary>The <c>--mode</c> values.</summary>
    public static readonly IReadOnlyList<string> ModeNames = ["depth", "width"];

    /// <summary>The <c>--units</c> values (width mode).</summary>
    public static readonly IReadOnlyList<string> WidthUnitNames = ["heads", "channels", "both"];

    /// <summary>The <c>--allocation</c> values (width mode).</summary>
    public static readonly IReadOnlyList<string> AllocationNames = ["uniform", "adaptive"];

    /// <summary>The <c>--group-reduction</c> values (width mode).</summary>
    public static readonly IReadOnlyList<string> GroupReductionNames = ["sum", "mean", "max", "product"];

    /// <summary>The <c>--unit</c> values.</summary>
    public static readonly IReadOnlyList<string> UnitNames = ["paragraph", "line"];

    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var output = CommonOptions.Out("The folder to write the pruned model to (config, safetensors, tokenizer files and, by default, the report), atomically.");
        var calibration = new Option<string?>("--calibration", "-c")
        {
            Description = "The UTF-8 calibration text: samples are drawn from its paragraphs (blocks between blank lines; see --unit). Default: the Brown Corpus sample bundled with pip-prune (data/calibration/brown-sample.txt next to the tool).",
            HelpName = "FILE",
        };
        var unit = new Option<string>("--unit") { Description = "What a calibration unit is: a paragraph (lines between blank lines) or a non-empty line.", DefaultValueFactory = _ => "paragraph" };
        unit.AcceptOnlyFromAmong([.. UnitNames]);
        var mode = new Option<string>("--mode")
        {
            Description = "depth: remove whole decoder layers; width: remove attention key/value groups and MLP channels inside the layers.",
            DefaultValueFactory = _ => "depth",
        };
        mode.AcceptOnlyFromAmong([.. ModeNames]);
        var metric = new Option<string>("--metric")
        {
            Description = "The importance metric. Depth: pip (PIP's PertImport, the default), gradient, taylor, magnitude, block-influence, perplexity-drop or random. "
                + "Width: taylor (the default; first order |W·g|), taylor-second (½W²F), taylor-mix, taylor-vector, wanda-sp, flap, magnitude or random.",
            DefaultValueFactory = _ => TorchMetricConstants.PertImport,
            HelpName = "NAME",
        };
        metric.AcceptOnlyFromAmong([.. TorchMetrics.AllNames.Union(TorchWidthMetrics.AllNames)]);
        var units = new Option<string>("--units") { Description = "Width mode: what to prune: heads (key/value groups with their query heads), channels (MLP) or both.", DefaultValueFactory = _ => "both" };
        units.AcceptOnlyFromAmong([.. WidthUnitNames]);
        var allocation = new Option<string>("--allocation")
        {
            Description = "Width mode: uniform (every layer of the range loses the same share, LLM-Pruner) or adaptive (scores standardized per kind and ranked across layers, FLAP).",
            DefaultValueFactory = _ => "uniform",
        };
        allocation.AcceptOnlyFromAmong([.. AllocationNames]);
        var groupReduction = new Option<string>("--group-reduction")
        {
            Description = "Width mode: how a unit's per-projection scores combine: sum, mean, max or product (log space).",
            DefaultValueFactory = _ => "sum",
        };
        groupReduction.AcceptOnlyFromAmong([.. GroupReductionNames]);
        var layerStart = new Option<int?>("--layer-start") { Description = "Width mode: first layer that may be pruned (default: skip the first 4/32 of the layers, as LLM-Pruner).", HelpName = "N" };
        var layerEnd = new Option<int?>("--layer-end") { Description = "Width mode: end (exclusive) of the layers that may be pruned (default: skip the last 2/32 of the layers).", HelpName = "N" };
        var biasCompensation = new Option<bool>("--bias-compensation")
        {
            Description = "Width mode, flap only: add the removed units' mean contribution as a bias of o_proj/down_proj (FLAP); Llama checkpoints then set attention_bias/mlp_bias; OPT adds it to its existing out_proj/fc2 biases (Qwen2 and Mistral have no such flag and are refused).",
        };
        var strategy = new Option<string>("--strategy")
        {
            Description = "iterative: score, remove the lowest-scoring layer, repeat; one-shot: score once and remove the lowest-scoring layers together.",
            DefaultValueFactory = _ => StrategyConstants.IterativeGreedyName,
        };
        strategy.AcceptOnlyFromAmong([.. StrategyNames]);
        var ratio = new Option<double?>("--ratio")
        {
            Description = $"Remove as many layers as fit in this fraction of all parameters, in (0, 1) (default {PipelineConstants.DefaultParameterRatio.ToString(CultureInfo.InvariantCulture)} when --layers is not given).",
            HelpName = "R",
        };
        var layers = new Option<int?>("--layers") { Description = "Remove exactly this many layers (instead of --ratio).", HelpName = "N" };
        var samples = new Option<int>("--samples") { Description = "Number of calibration samples.", DefaultValueFactory = _ => CalibrationConstants.DefaultSampleCount, HelpName = "N" };
        var maxTokens = new Option<int>("--max-tokens")
        {
            Description = "Longest token sequence per sample: samples are cut at a word boundary to fit (before perturbation, so every edit is seen).",
            DefaultValueFactory = _ => TorchMetricConstants.DefaultMaxTokens,
            HelpName = "N",
        };
        var norm = new Option<string>("--norm") { Description = "The vector norm of gradient-norm metrics: L1, L2 or Linf.", DefaultValueFactory = _ => PipelineConstants.DefaultNorm };
        var aggregation = new Option<string>("--aggregation")
        {
            Description = "How pip accumulates over samples: per-sample (norm of each sample's gradient difference, then the mean) or summed (norm of the summed difference).",
            DefaultValueFactory = _ => "per-sample",
        };
        aggregation.AcceptOnlyFromAmong([.. AggregationNames]);
        var sets = new Option<int>("--sets")
        {
            Description = "Independent perturbation sets per round (pip only; the consistency discriminator needs 2 or more).",
            DefaultValueFactory = _ => PipelineConstants.DefaultPerturbationSets,
            HelpName = "N",
        };
        var cvThreshold = new Option<double?>("--cv-threshold")
        {
            Description = $"The consistency discriminator's largest coefficient of variation of a layer's scores across perturbation sets (default {ConsistencyDiscriminatorConstants.DefaultThreshold.ToString(CultureInfo.InvariantCulture)}).",
            HelpName = "X",
        };
        var noDiscriminator = new Option<bool>("--no-discriminator") { Description = "Do not filter candidates with the consistency discriminator (pip only)." };
        var perturber = new Option<string>("--perturber")
        {
            Description = "How twins are made (pip only): lexicon (edits that make real words where possible) or random-char (plain character edits).",
            DefaultValueFactory = _ => PerturbationConstants.LexiconPerturberName,
        };
        perturber.AcceptOnlyFromAmong([.. PerturberNames]);
        var rate = new Option<double?>("--rate")
        {
            Description = $"Edits per sample as a fraction of its words, in (0, 1] (default {PerturbationConstants.DefaultRate.ToString(CultureInfo.InvariantCulture)}; at least one edit per sample).",
            HelpName = "X",
        };
        var wordList = new Option<string?>("--word-list") { Description = "The lexicon perturber's word list (one word per line). Default: the words of the calibration file.", HelpName = "FILE" };
        var guardFirst = new Option<int>("--guard-first") { DefaultValueFactory = _ => 0, Description = "Never remove the first K layers of the original model.", HelpName = "K" };
        var guardLast = new Option<int>("--guard-last") { DefaultValueFactory = _ => 0, Description = "Never remove the last M layers of the original model.", HelpName = "M" };
        var seed = new Option<int>("--seed") { Description = "The seed of the sample choice, the perturbations and random metrics.", DefaultValueFactory = _ => PipelineConstants.DefaultSeed };
        var dtype = CommonOptions.Dtype("The type to compute in (default: the checkpoint's torch_dtype where this device computes it fast, else float32).");
        var saveDtype = CommonOptions.Dtype("The type to store the pruned weights in (default: the checkpoint's torch_dtype).", "--save-dtype");
        var layout = LayoutOption();
        var device = CommonOptions.Device();
        var stream = CommonOptions.Stream();
        var memoryLimit = CommonOptions.MemoryLimit();
        var report = new Option<string?>("--report") { Description = $"Where to write the JSON report of the run. Default: {DefaultReportName} in the output folder.", HelpName = "FILE" };
        var overwrite = CommonOptions.Overwrite();
        var json = CommonOptions.Json();

        var command = new Command("prune", "Remove whole decoder layers of a model (PIP's PertImport or a baseline metric), save the pruned model and the report of the run.")
        {
            model, output, calibration, unit, mode, metric, strategy, ratio, layers, samples, maxTokens, norm, aggregation, sets, cvThreshold,
            noDiscriminator, perturber, rate, wordList, guardFirst, guardLast, units, allocation, groupReduction, layerStart, layerEnd, biasCompensation,
            seed, dtype, saveDtype, layout, device, stream, memoryLimit, CommonOptions.AllowNonFinite(), report, overwrite, json,
        };
        CommandRunner.SetBody(command, context, async run =>
        {
            var ct = run.CancellationToken;
            var total = Stopwatch.StartNew();
            bool Given(Option option) => run.ParseResult.GetResult(option) is { Implicit: false };

            // 1. Paths, before anything slow.
            var overwriting = run.Get(overwrite);
            var outFolder = ModelLoading.CheckOutputFolder(run.Require(output), overwriting);
            var reportFile = Path.GetFullPath(run.Get(report) ?? Path.Combine(outFolder, DefaultReportName));
            var reportInOut = string.Equals(Path.GetDirectoryName(reportFile), outFolder, StringComparison.Ordinal);
            CheckReportPath(reportFile, reportInOut, overwriting);
            var modelFolder = ModelLoading.RequireModelFolder(ModelLoading.ModelFolderOrDefault(run.Get(model), context));
            if (string.Equals(modelFolder, outFolder, StringComparison.Ordinal))
                throw new CliInputException($"Output folder '{outFolder}' is the model folder; write the pruned model to another folder.");
            var calibrationFile = ModelLoading.CalibrationFileOrDefault(run.Get(calibration), context);

            // 2. Every option, validated together.
            var width = run.Require(mode) == "width";
            var metricName = width && !Given(metric) ? WidthMetricConstants.Taylor : run.Require(metric);
            var usesPerturbations = !width && metricName == TorchMetricConstants.PertImport;
            var perturberName = run.Require(perturber);
            var normName = run.Require(norm);
            var errors = new List<string>();
            if (run.Get(ratio) is not null && run.Get(layers) is not null)
                errors.Add("--ratio and --layers cannot be used together; give one target.");
            var widthOptions = new Option[] { units, allocation, groupReduction, layerStart, layerEnd, biasCompensation };
            if (width)
            {
                if (!TorchWidthMetrics.AllNames.Contains(metricName))
                    errors.Add($"--metric: '{metricName}' is a depth metric; width pruning uses {string.Join(", ", TorchWidthMetrics.AllNames)}.");
                if (run.Get(layers) is not null)
                    errors.Add("--layers: width pruning removes no layer; give --ratio.");
                if (run.Get(biasCompensation) && metricName != WidthMetricConstants.Flap)
                    errors.Add($"--bias-compensation: needs the input means that only the flap metric measures (metric '{metricName}').");
                var ignored = new Option[] { strategy, sets, perturber, rate, wordList, cvThreshold, noDiscriminator, aggregation, guardFirst, guardLast, norm }.Where(Given).Select(o => o.Name).ToArray();
                if (ignored.Length > 0)
                    run.Logger.LogWarning("Width pruning: {Options} ignored.", string.Join(", ", ignored));
            }
            else
            {
                if (!TorchMetrics.AllNames.Contains(metricName))
                    errors.Add($"--metric: '{metricName}' is a width metric; use --mode width, or one of {string.Join(", ", TorchMetrics.AllNames)}.");
                var given = widthOptions.Where(Given).Select(o => o.Name).ToArray();
                if (given.Length > 0)
                    errors.Add($"{string.Join(", ", given)}: width options need --mode width.");
            }

            if (width)
            {
                // Nothing more: the perturbation options do not apply.
            }
            else if (!usesPerturbations)
            {
                var ignored = new Option[] { sets, perturber, rate, wordList, cvThreshold, noDiscriminator, aggregation }.Where(Given).Select(o => o.Name).ToArray();
                if (ignored.Length > 0)
                    run.Logger.LogWarning("Metric {Metric} uses no perturbations: {Options} ignored.", metricName, string.Join(", ", ignored));
            }
            else
            {
                if (run.Get(wordList) is not null && perturberName != PerturbationConstants.LexiconPerturberName)
                    errors.Add("--word-list: only the lexicon perturber uses a word list.");
                if (run.Get(noDiscriminator) && Given(cvThreshold))
                    errors.Add("--cv-threshold: the consistency discriminator is off (--no-discriminator).");
            }

            var target = run.Get(layers) is { } layerCount ? PruningTarget.LayerCount(layerCount) : PruningTarget.Ratio(run.Get(ratio) ?? PipelineConstants.DefaultParameterRatio);
            var seedValue = run.Require(seed);
            var calibrationOptions = new CalibrationOptions
            {
                FilePath = calibrationFile,
                SampleCount = run.Require(samples),
                Seed = seedValue,
                Unit = run.Require(unit) == "line" ? CalibrationUnit.Line : CalibrationUnit.Paragraph,
            };
            var pipelineOptions = new PipelineOptions
            {
                Target = target,
                Seed = seedValue,
                PerturbationSets = run.Require(sets),
                Norm = normName,
                Calibration = calibrationOptions,
            };
            var metricOptions = new TorchMetricOptions
            {
                // An unknown norm is reported once, by the pipeline options.
                Norm = Norms.TryGet(normName, out _) ? normName : PipelineConstants.DefaultNorm,
                Aggregation = run.Require(aggregation) == "summed" ? PertImportAggregation.SummedDifference : PertImportAggregation.PerSampleMean,
                MaxTokens = run.Require(maxTokens),
            };
            var builder = new PipelineBuilder().Configure(pipelineOptions).UseLoggerFactory(run.LoggerFactory);
            if (!width && TorchMetrics.AllNames.Contains(metricName)) builder.UseMetric(metricName, metricOptions);
            if (run.Require(strategy) == StrategyConstants.OneShotName) builder.UseOneShot();
            else builder.UseIterativeGreedy(new IterativeGreedyStrategyOptions());
            if (usesPerturbations)
            {
                if (perturberName == PerturbationConstants.RandomCharPerturberName)
                {
                    var options = new RandomCharPerturberOptions();
                    if (run.Get(rate) is { } r) options.Rate = r;
                    builder.UseRandomCharPerturber(options);
                }
                else
                {
                    var options = new LexiconPerturberOptions { WordListPath = run.Get(wordList) is { } w ? Path.GetFullPath(w) : null };
                    if (run.Get(rate) is { } r) options.Rate = r;
                    builder.UseLexiconPerturber(options);
                }
            }

            var first = run.Require(guardFirst);
            var last = run.Require(guardLast);
            if (first != 0 || last != 0) builder.AddLayerGuard(first, last);
            var useDiscriminator = usesPerturbations && !run.Get(noDiscriminator);
            if (useDiscriminator)
            {
                var options = new ConsistencyDiscriminatorOptions();
                if (run.Get(cvThreshold) is { } threshold) options.Threshold = threshold;
                builder.AddConsistencyDiscriminator(options);
            }

            PruningPipeline? pipeline = null;
            WidthPruningPipeline? widthPipeline = null;
            try
            {
                if (!width)
                {
                    pipeline = builder.Build();
                }
                else if (TorchWidthMetrics.AllNames.Contains(metricName))
                {
                    var widthBuilder = new WidthPipelineBuilder()
                        .Configure(pipelineOptions)
                        .ConfigureWidth(new WidthPruningOptions
                        {
                            Units = run.Require(units) switch { "heads" => WidthUnits.Heads, "channels" => WidthUnits.Channels, _ => WidthUnits.Both },
                            Allocation = run.Require(allocation) == "adaptive" ? WidthAllocation.Adaptive : WidthAllocation.Uniform,
                            LayerStart = run.Get(layerStart),
                            LayerEnd = run.Get(layerEnd),
                            BiasCompensation = run.Get(biasCompensation),
                        })
                        .UseLoggerFactory(run.LoggerFactory);
                    GroupReduction.TryParse(run.Require(groupReduction), out var reduction);
                    widthPipeline = widthBuilder.UseWidthMetric(metricName, new WidthMetricOptions { GroupReduction = reduction, MaxTokens = run.Require(maxTokens) }).Build();
                }
            }
            catch (OptionsValidationException e)
            {
                errors.AddRange(e.Failures.Select(f => WithOptionName(f, run.Get(layers) is not null)));
            }

            if (errors.Count > 0 || (pipeline is null && widthPipeline is null))
                throw new CliInputException($"{errors.Count} invalid option(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors));

            // 3. Calibration samples and the model.
            var calibrationSet = CalibrationSet.Load(calibrationFile, calibrationOptions, ct);
            using var loaded = ModelStreaming.LoadOrStream(run, modelFolder, run.Get(dtype), run.Require(device), run.Get(stream), run.Get(memoryLimit), StreamObstacle(width, run.Get(biasCompensation), run.Require(layout)));
            var lm = loaded.Model;
            _ = loaded.Tokenizer;
            if (target.Layers is { } wanted && wanted >= lm.LayerCount)
                throw new CliInputException($"--layers {wanted}: the model in '{modelFolder}' has {lm.LayerCount} layers; at most {lm.LayerCount - 1} can be removed (one always stays).");
            var storedType = run.Get(saveDtype) ?? TorchCausalLM.DtypeOf(loaded.Config);
            if (run.Require(layout) == "compatible" && CheckpointLayouts.CompatibleObstacle(loaded.Config) is { } obstacle)
                throw new CliInputException($"--layout compatible: the model in '{modelFolder}' cannot be written with one shape for all layers: {obstacle}. Use --layout per-layer.");
            calibrationSet = FitToTokens(calibrationSet, lm, metricOptions.MaxTokens);
            var sampleTokens = calibrationSet.Samples.Select(s => lm.Tokenize(s.Text).Count).ToArray();
            run.Logger.LogInformation("Calibration: {Count} samples from {File}, {Min}-{Max} tokens each (at most {MaxTokens}).",
                sampleTokens.Length, calibrationFile, sampleTokens.Min(), sampleTokens.Max(), metricOptions.MaxTokens);

            // 4. Pruning.
            var originalParameters = lm.ParameterCount;
            var clock = Stopwatch.StartNew();
            PruningReport result;
            if (widthPipeline is not null)
            {
                try
                {
                    result = await widthPipeline.RunAsync((IWidthPrunableModel?)loaded.Resident ?? loaded.Streamed!, calibrationSet, run.WithBars(new ProgressLogger(run.Logger, originalParameters), ProgressBars.Pruning), ct).ConfigureAwait(false);
                }
                catch (ArgumentException e) when (e is not ArgumentOutOfRangeException)
                {
                    throw new CliInputException($"Width pruning of '{modelFolder}': {e.Message}");
                }
            }
            else
            {
                result = await pipeline!.RunAsync(lm, calibrationSet, run.WithBars(new ProgressLogger(run.Logger, originalParameters), ProgressBars.Pruning), ct).ConfigureAwait(false);
            }

            var pruningSeconds = clock.Elapsed.TotalSeconds;
            if (width && result.FinalParameterCount >= result.OriginalParameterCount)
                run.Logger.LogWarning("Nothing was removed ({Reason}): with target {Target}, the output is a copy of the model.", result.StopReason, target);
            else if (!width && result.RemovedOriginalLayers.Count == 0)
                run.Logger.LogWarning("No layer was removed ({Reason}): with target {Target}, the output is a copy of the model.", result.StopReason, target);

            // 5. Output: the model folder (with the report when it goes there) in one atomic move.
            ct.ThrowIfCancellationRequested();
            clock.Restart();
            run.Logger.LogInformation("Writing {Folder} ({Dtype}).", outFolder, CommonOptions.DtypeName(storedType));
            // A report that goes into the model folder is written straight into the checkpoint's temporary folder (no staging folder).
            Action<string, CancellationToken>? writeReport = reportInOut ? (temp, _) => PruningReportJson.Write(result, Path.Combine(temp, Path.GetFileName(reportFile))) : null;
            LaidOutCheckpoint? laidOut = null;
            try
            {
                if (loaded.Streamed is { } streamed)
                {
                    // The source checkpoint minus the removed layers (depth) or units (width: the per-layer layout), copied tensor by tensor from its files.
                    if (width) run.Logger.LogInformation("Streamed width pruning writes the per-layer layout (per_layer_config where the layers differ).");
                    try
                    {
                        streamed.Save(outFolder, width && !Given(saveDtype) ? null : storedType, new CheckpointSaveOptions { Overwrite = overwriting, WriteExtraFiles = writeReport }, ct);
                    }
                    catch (NotSupportedException e) when (width)
                    {
                        throw new CliInputException($"--save-dtype with --stream: {e.Message}", e);
                    }
                }
                else
                {
                    var resident = loaded.Resident!;
                    var extras = TorchCausalLM.CompanionFiles.Select(f => Path.Combine(loaded.Folder, f)).Where(File.Exists).ToList();
                    laidOut = LayOut(resident, run.Require(layout), modelFolder, result.FinalParameterCount, run.Logger);
                    var config = laidOut.Config.WithTorchDtype(CommonOptions.DtypeName(storedType));
                    TorchSafeTensors.Save(outFolder, config, laidOut.Weights, new CheckpointSaveOptions { Overwrite = overwriting, ExtraFiles = extras, WriteExtraFiles = writeReport }, storedType, ct);
                }

                // The model is in place: the report outside it is written whatever happens now (a small, atomic write).
                if (!reportInOut) await PruningReportJson.WriteAsync(result, reportFile, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                laidOut?.Dispose();
            }

            var summary = Summarize(result, modelFolder, outFolder, reportFile, calibrationFile, CommonOptions.DtypeName(storedType), laidOut, pruningSeconds, clock.Elapsed.TotalSeconds, total.Elapsed.TotalSeconds);
            if (run.Get(json)) ResultWriter.WriteJson(run.Out, summary);
            else WriteTable(run.Out, summary);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Why a run cannot stream, or null: width pruning with bias compensation or the compatible layout needs the model in memory.</summary>
    private static string? StreamObstacle(bool width, bool biasCompensation, string layout) =>
        !width ? null
        : biasCompensation ? "width pruning with --bias-compensation needs the model in memory (a streamed model has no bias to compensate into)"
        : layout == "compatible" ? "--layout compatible needs the model in memory for width pruning (a streamed width prune writes the per-layer layout)"
        : null;

    /// <summary>The <c>--layout</c> option: how layers of different widths are written (<see cref="CheckpointLayout"/>).</summary>
    internal static Option<string> LayoutOption()
    {
        var layout = new Option<string>("--layout")
        {
            Description = "How layers of different widths are written: compatible (one shape for all layers, smaller ones padded with exact zeros: loads in released transformers), "
                + "per-layer (each layer at its own size, listed in per_layer_config: smallest, read by Pip; transformers' Llama and OPT classes do not build such layers), "
                + "or auto (compatible when the layers can be given one shape, per-layer otherwise).",
            DefaultValueFactory = _ => "auto",
        };
        layout.AcceptOnlyFromAmong([.. CheckpointLayouts.Names]);
        return layout;
    }

    /// <summary>
    /// Lays out a pruned model for saving in the <c>--layout</c> asked for and logs what padding costs or what the
    /// per-layer layout means for other readers.
    /// </summary>
    /// <exception cref="CliInputException">The compatible layout was asked for and the model has no compatible form.</exception>
    internal static LaidOutCheckpoint LayOut(TorchCausalLM model, string layoutName, string modelFolder, long effectiveParameters, ILogger logger)
    {
        CheckpointLayouts.TryParse(layoutName, out var requested);
        LaidOutCheckpoint laidOut;
        try
        {
            laidOut = LaidOutCheckpoint.Create(model.Model, requested);
        }
        catch (NotSupportedException e)
        {
            throw new CliInputException($"--layout compatible, model '{modelFolder}': {e.Message}");
        }

        if (laidOut.PaddingParameterCount > 0)
            logger.LogWarning("Layout compatible: the layers are padded with exact zeros to one shape; the checkpoint stores {Stored:N0} parameters, {Padding:N0} of them zeros ({Effective:N0} effective). "
                + "--layout per-layer stores only the {Effective:N0}, for readers of per_layer_config (Pip); pruning every layer alike (--allocation uniform --layer-start 0 --layer-end N) needs no padding.",
                laidOut.ParameterCount, laidOut.PaddingParameterCount, effectiveParameters, effectiveParameters);
        else if (laidOut.Layout == CheckpointLayout.PerLayer && laidOut.Config is LlamaConfig { IsHeterogeneous: true } or OptConfig { IsHeterogeneous: true })
            logger.LogWarning("Layout per-layer: the layers differ in width (per_layer_config); Pip reads this checkpoint, Hugging Face transformers' Llama and OPT classes do not.");
        return laidOut;
    }

    /// <summary>Refuses a report path that would clobber something: a folder, a model file, or an existing file without --overwrite.</summary>
    private static void CheckReportPath(string reportFile, bool inOutputFolder, bool overwrite)
    {
        var name = Path.GetFileName(reportFile);
        if (inOutputFolder && (name == CheckpointFolder.ConfigFileName || name.EndsWith(".safetensors", StringComparison.Ordinal)
            || name.EndsWith(".safetensors.index.json", StringComparison.Ordinal) || TorchCausalLM.CompanionFiles.Contains(name)))
            throw new CliInputException($"Report file '{reportFile}' would replace a file of the pruned model; choose another name.");
        if (Directory.Exists(reportFile))
            throw new CliInputException($"Report file '{reportFile}' is a folder.");
        if (!inOutputFolder && File.Exists(reportFile) && !overwrite)
            throw new CliInputException($"Report file '{reportFile}' exists; pass --overwrite to replace it.");
    }

    /// <summary>Prefixes a validation message of the library with the command-line option it comes from.</summary>
    internal static string WithOptionName(string failure, bool layerTarget)
    {
        var member = failure.Split(": ", 2)[0];
        string? option = member switch
        {
            _ when member.EndsWith(".Target", StringComparison.Ordinal) => layerTarget ? "--layers" : "--ratio",
            _ when member.EndsWith(".SampleCount", StringComparison.Ordinal) => "--samples",
            _ when member.EndsWith(".Norm", StringComparison.Ordinal) => "--norm",
            _ when member.EndsWith(".MaxTokens", StringComparison.Ordinal) || member.EndsWith(".MaxTokensPerSample", StringComparison.Ordinal) => "--max-tokens",
            _ when member.EndsWith(".PerturbationSets", StringComparison.Ordinal) => "--sets",
            _ when member.EndsWith(".Threshold", StringComparison.Ordinal) => "--cv-threshold",
            _ when member.EndsWith(".Rate", StringComparison.Ordinal) => "--rate",
            _ when member.EndsWith(".WordListPath", StringComparison.Ordinal) => "--word-list",
            _ when member.EndsWith("LayerGuardOptions.First", StringComparison.Ordinal) => "--guard-first",
            _ when member.EndsWith("LayerGuardOptions.Last", StringComparison.Ordinal) => "--guard-last",
            _ when member.EndsWith(".LayerStart", StringComparison.Ordinal) => "--layer-start",
            _ when member.EndsWith(".LayerEnd", StringComparison.Ordinal) => "--layer-end",
            _ => null,
        };
        return option is null ? failure : $"{option}: {failure}";
    }

    /// <summary>
    /// Cuts each sample at a word boundary so that it tokenizes to at most <paramref name="maxTokens"/> tokens: the
    /// metric would cut the tokens anyway, and a perturbation edit past the cut would be invisible to it.
    /// </summary>
    internal static CalibrationSet FitToTokens(CalibrationSet set, IPrunableModel model, int maxTokens) =>
        Pip.Torch.Evaluation.Comparison.FitCalibrationToTokens(set, model, maxTokens);

    private static PruneResult Summarize(PruningReport r, string model, string output, string reportFile, string calibrationFile, string saveDtype,
        LaidOutCheckpoint? saved, double pruningSeconds, double saveSeconds, double totalSeconds)
    {
        // A streamed model is saved as the source checkpoint minus its removed layers: each layer as it is, no padding.
        var rounds = r.Rounds.Select(round => new PruneRoundResult(
            round.Round,
            round.Removed.Select(x => new RemovedLayerResult(x.OriginalLayer, x.Layer, x.Score, x.ParameterCount)).ToArray(),
            round.Excluded.Select(x => new ExcludedLayerResult(x.OriginalLayer, x.Filter, x.Reason)).ToArray(),
            round.LayerCountAfter,
            round.ParameterCountAfter,
            Math.Round(round.WallSeconds, 3))).ToArray();
        var widthLayers = r.Rounds.FirstOrDefault()?.Width?.Layers.Select(l => new WidthLayerResult(l.OriginalLayer, l.HeadsBefore, l.HeadsAfter,
            l.ChannelsBefore, l.ChannelsAfter, l.ParameterCountBefore, l.ParameterCountAfter)).ToArray();
        return new PruneResult(
            Mode: r.Settings.Mode,
            Model: model,
            Output: output,
            Report: reportFile,
            Calibration: calibrationFile,
            Samples: r.Samples.Count,
            Metric: r.Settings.Metric,
            Perturber: r.Settings.Perturber,
            Strategy: r.Settings.Strategy,
            Filters: r.Settings.Filters,
            Target: r.Settings.Target.ToString(),
            Seed: r.Settings.Seed,
            OriginalLayers: r.OriginalLayerCount,
            FinalLayers: r.FinalLayerCount,
            RemovedLayers: r.RemovedOriginalLayers,
            RemainingLayers: r.RemainingOriginalLayers,
            ExcludedLayers: [.. r.Rounds.SelectMany(x => x.Excluded).Select(x => x.OriginalLayer).Distinct().Order()],
            Rounds: rounds,
            ParametersBefore: r.OriginalParameterCount,
            ParametersAfter: r.FinalParameterCount,
            RemovedParameterRatio: Math.Round(r.RemovedParameterRatio, 6),
            StopReason: r.StopReason,
            TargetReached: r.TargetReached,
            SaveDtype: saveDtype,
            Layout: CheckpointLayouts.Name(saved?.Layout ?? CheckpointLayout.PerLayer),
            StoredParameters: saved?.ParameterCount ?? r.FinalParameterCount,
            PaddingParameters: saved?.PaddingParameterCount ?? 0,
            PruningSeconds: Math.Round(pruningSeconds, 3),
            SaveSeconds: Math.Round(saveSeconds, 3),
            Seconds: Math.Round(totalSeconds, 3),
            WidthLayers: widthLayers);
    }

    private static void WriteTable(TextWriter output, PruneResult r)
    {
        static string N(long v) => ResultWriter.Count(v);
        static string Score(double s) => s.ToString("G4", CultureInfo.InvariantCulture);
        static string Layers(IEnumerable<int> l) => l.Any() ? string.Join(", ", l) : "none";
        var method = r.Metric + (r.Perturber is null ? "" : $" (perturber {r.Perturber})") + $", {r.Strategy}" + (r.Filters.Count == 0 ? "" : $", filters: {string.Join(", ", r.Filters)}");
        bool isWidth = r.WidthLayers is not null;
        List<(string, string)> rows =
        [
            ("Model", r.Model),
            ("Pruned model", r.Output),
            ("Report", r.Report),
            ("Calibration", $"{r.Samples} samples from {r.Calibration}"),
            ("Method", isWidth ? $"width pruning: {r.Metric}, {r.Strategy}" : method),
            ("Target", $"{r.Target} (seed {r.Seed})"),
            ("Layers", $"{r.OriginalLayers} → {r.FinalLayers}"),
        ];
        if (r.WidthLayers is { } widthLayers)
        {
            foreach (var l in widthLayers.Where(l => l.HeadsAfter != l.HeadsBefore || l.ChannelsAfter != l.ChannelsBefore || l.ParametersAfter != l.ParametersBefore))
            {
                rows.Add(($"  layer {l.OriginalLayer}", $"key/value groups {l.HeadsBefore} → {l.HeadsAfter}, channels {l.ChannelsBefore} → {l.ChannelsAfter}, parameters {N(l.ParametersBefore)} → {N(l.ParametersAfter)}"));
            }
        }
        else
        {
            rows.Add(("Removed layers", Layers(r.RemovedLayers) + " (original indices, in removal order)"));
            foreach (var round in r.Rounds)
            {
                var removed = round.Removed.Count == 0 ? "nothing removed"
                    : "removed " + string.Join(", ", round.Removed.Select(x => $"{x.OriginalLayer} (score {Score(x.Score)})"));
                var excluded = round.Excluded.Count == 0 ? "" : "; excluded " + string.Join(", ", round.Excluded.Select(x => $"{x.OriginalLayer} ({x.Filter})"));
                rows.Add(($"  round {round.Round}", $"{removed}{excluded}; {round.LayersAfter} layers left, {ResultWriter.Number(round.Seconds, 1)} s"));
            }

            rows.Add(("Excluded by filters", Layers(r.ExcludedLayers)));
        }

        rows.Add(("Parameters", $"{N(r.ParametersBefore)} → {N(r.ParametersAfter)} ({ResultWriter.Number(100 * r.RemovedParameterRatio, 2)} % removed)"));
        rows.Add(("Stopped", r.StopReason.ToString() + (r.TargetReached ? "" : " (target not reached)")));
        rows.Add(("Saved as", $"{r.SaveDtype}, layout {r.Layout}" + (r.PaddingParameters > 0 ? $": {N(r.StoredParameters)} parameters stored, {N(r.PaddingParameters)} of them zero padding" : "")));
        rows.Add(("Time", $"{ResultWriter.Number(r.Seconds, 1)} s (pruning {ResultWriter.Number(r.PruningSeconds, 1)} s, saving {ResultWriter.Number(r.SaveSeconds, 1)} s)"));
        ResultWriter.WriteTable(output, rows);
    }

    /// <summary>Logs pruning progress: each round's end and the metric's progress about every tenth (Information), the rest at Debug.</summary>
    private sealed class ProgressLogger(ILogger logger, long originalParameters) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress p)
        {
            switch (p.Stage)
            {
                case PruningStage.Perturbing:
                    logger.Log(p.Completed == p.Total ? LogLevel.Information : LogLevel.Debug,
                        "Round {Round}: perturbed twins {Done}/{Total}.", p.Round, p.Completed, p.Total);
                    break;
                case PruningStage.Scoring:
                    var step = Math.Max(1, p.Total / 10);
                    logger.Log(p.Completed % step == 0 || p.Completed == p.Total ? LogLevel.Information : LogLevel.Debug,
                        "Round {Round}: scoring {Layers} layers, {Done}/{Total} ({Percent:F0} %).", p.Round, p.LayerCount, p.Completed, p.Total, 100.0 * p.Completed / Math.Max(1, p.Total));
                    break;
                case PruningStage.RoundCompleted when p.CompletedRound is { } round:
                    logger.LogInformation("Round {Round} done in {Seconds:F1} s: {Layers} layers and {Parameters:N0} parameters left ({Removed:F2} % removed so far).",
                        p.Round, round.WallSeconds, p.LayerCount, p.ParameterCount, 100.0 * (originalParameters - p.ParameterCount) / Math.Max(1, originalParameters));
                    break;
            }
        }
    }
}

/// <summary>The result of <c>prune</c>.</summary>
internal sealed record PruneResult(PruningMode Mode, string Model, string Output, string Report, string Calibration, int Samples, string Metric, string? Perturber,
    string Strategy, IReadOnlyList<string> Filters, string Target, int Seed, int OriginalLayers, int FinalLayers, IReadOnlyList<int> RemovedLayers,
    IReadOnlyList<int> RemainingLayers, IReadOnlyList<int> ExcludedLayers, IReadOnlyList<PruneRoundResult> Rounds, long ParametersBefore,
    long ParametersAfter, double RemovedParameterRatio, PruningStopReason StopReason, bool TargetReached, string SaveDtype, string Layout,
    long StoredParameters, long PaddingParameters, double PruningSeconds,
    double SaveSeconds, double Seconds, IReadOnlyList<WidthLayerResult>? WidthLayers);

/// <summary>One layer of a width <c>prune</c>: its original index and its key/value groups, channels and parameters before and after.</summary>
internal sealed record WidthLayerResult(int OriginalLayer, int HeadsBefore, int HeadsAfter, int ChannelsBefore, int ChannelsAfter, long ParametersBefore, long ParametersAfter);

/// <summary>One round of <c>prune</c>.</summary>
internal sealed record PruneRoundResult(int Round, IReadOnlyList<RemovedLayerResult> Removed, IReadOnlyList<ExcludedLayerResult> Excluded,
    int LayersAfter, long ParametersAfter, double Seconds);

/// <summary>A layer removed by <c>prune</c>: its original index, its index in the round, score and size.</summary>
internal sealed record RemovedLayerResult(int OriginalLayer, int Layer, double Score, long Parameters);

/// <summary>A layer a filter kept in a round of <c>prune</c>.</summary>
internal sealed record ExcludedLayerResult(int OriginalLayer, string Filter, string Reason);
