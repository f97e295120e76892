using System.CommandLine;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pip.Checkpoints;
using Pip.Cli.Infrastructure;
using Pip.Search;
using Pip.Torch;
using Pip.Torch.Checkpoints;
using Pip.Torch.Pruning;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Search;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>search</c>: AdaPruner (Kong et al., AAAI 2025): searches a solution space of calibration data (corpus, number
/// of samples, sequence length) × importance metric (width: metric, group aggregation, allocation; depth: metric,
/// perturber, norm) with TPE (or random search), each trial pruning a fresh copy of the model and measuring the
/// perplexity of a held-out validation text, optionally after a short LoRA recovery; then prunes the model with the
/// best configuration and saves it, with <c>search.json</c> (every trial) and <c>best-so-far.png</c>.
/// </summary>
/// <remarks>
/// The validation text must be held out from calibration: it must be another file, and the command refuses
/// calibration (or recovery) files that share a line of eight or more words with it. The output folder (the model,
/// the search report, the chart and the best run's pruning report) is written atomically at the end.
/// </remarks>
internal static class SearchCommand
{
    /// <summary>The search report's file name in the output folder.</summary>
    public const string ReportName = "search.json";

    /// <summary>The best-so-far chart's file name in the output folder.</summary>
    public const string ChartName = "best-so-far.png";

    /// <summary>The best configuration's pruning report in the output folder.</summary>
    public const string PruningReportName = "pruning-report.json";

    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var output = CommonOptions.Out($"The folder to write the model pruned with the best configuration to, with {ReportName} (every trial), {ChartName} and {PruningReportName}, atomically.");
        var calibration = new Option<string>("--calibration", "-c")
        {
            Description = "Comma-separated calibration corpora (UTF-8 text, one passage per line); the search picks one per trial. Each is named after its file. None may hold the --valid text.",
            Required = true,
            HelpName = "FILE[,FILE...]",
        };
        var valid = new Option<string>("--valid")
        {
            Description = "The held-out validation text whose perplexity is the objective (WikiText *.tokens files are joined as the papers do). It must be a separate file that calibration never sees.",
            Required = true,
            HelpName = "FILE",
        };
        var validTokens = new Option<int>("--valid-tokens") { Description = "Validation tokens measured per trial (the first N of the text).", DefaultValueFactory = _ => TorchAdaPrunerConstants.DefaultValidationTokens, HelpName = "N" }.AtLeast(2);
        var window = new Option<int>("--window") { Description = "Validation window in tokens (non-overlapping).", DefaultValueFactory = _ => Pip.Torch.Evaluation.CorpusWindowing.DefaultWindow, HelpName = "N" }.AtLeast(2);
        var ratio = new Option<double>("--ratio") { Description = "Fraction of all parameters to remove, in (0, 1).", DefaultValueFactory = _ => PipelineConstants.DefaultParameterRatio, HelpName = "R" };
        var mode = new Option<string>("--mode") { Description = "width: attention key/value groups and MLP channels (AdaPruner's setting); depth: whole layers.", DefaultValueFactory = _ => "width" };
        mode.AcceptOnlyFromAmong("width", "depth");
        var trials = new Option<int>("--trials") { Description = "The budget in trials (a configuration proposed again is looked up, not pruned again, but counts).", DefaultValueFactory = _ => AdaPrunerSearchOptions.DefaultMaxTrials, HelpName = "N" }.AtLeast(1);
        var searcher = new Option<string>("--searcher") { Description = "tpe (Bayesian optimisation, AdaPruner's) or random (the baseline).", DefaultValueFactory = _ => "tpe" };
        searcher.AcceptOnlyFromAmong("tpe", "random");
        var seed = new Option<int>("--seed") { Description = "The searcher's seed.", DefaultValueFactory = _ => 42 };
        var startup = new Option<int?>("--startup-trials") { Description = "TPE: random trials before the model is used (default min(10, trials/3)).", HelpName = "N" }.AtLeast(0);
        var samples = new Option<string>("--samples") { Description = "Comma-separated numbers of calibration samples to search.", DefaultValueFactory = _ => Join(AdaPrunerConstants.DefaultSampleCounts), HelpName = "N[,N...]" };
        var seqLens = new Option<string>("--seq-lens") { Description = "Comma-separated calibration sequence lengths (tokens) to search.", DefaultValueFactory = _ => Join(AdaPrunerConstants.DefaultSequenceLengths), HelpName = "N[,N...]" };
        var calibrationSeeds = new Option<string>("--calibration-seeds") { Description = "Comma-separated seeds of the draw of the calibration passages to search.", DefaultValueFactory = _ => CalibrationConstants.DefaultSeed.ToString(CultureInfo.InvariantCulture), HelpName = "N[,N...]" };
        var metrics = new Option<string?>("--metrics")
        {
            Description = $"Comma-separated metrics to search. Width default: {string.Join(",", AdaPrunerConstants.DefaultWidthMetrics)} (of {string.Join(", ", TorchWidthMetrics.AllNames)}); depth default: {string.Join(",", AdaPrunerConstants.DefaultDepthMetrics)} (of {string.Join(", ", TorchMetrics.AllNames)}).",
            HelpName = "NAME[,NAME...]",
        };
        var aggregations = new Option<string>("--aggregations") { Description = "Width: comma-separated group aggregations to search (sum, mean, max, product).", DefaultValueFactory = _ => "sum,mean,max,product", HelpName = "NAME[,NAME...]" };
        var allocations = new Option<string>("--allocations") { Description = "Width: comma-separated allocations to search (uniform: every layer alike, LLM-Pruner; adaptive: FLAP).", DefaultValueFactory = _ => "uniform", HelpName = "NAME[,NAME...]" };
        var perturbers = new Option<string>("--perturbers") { Description = "Depth, pip: comma-separated perturbers to search (lexicon, random-char).", DefaultValueFactory = _ => string.Join(',', AdaPrunerConstants.DefaultPerturbers), HelpName = "NAME[,NAME...]" };
        var norms = new Option<string>("--norms") { Description = "Depth, pip and gradient: comma-separated norms to search (L1, L2, Linf).", DefaultValueFactory = _ => string.Join(',', AdaPrunerConstants.DefaultNorms), HelpName = "NAME[,NAME...]" };
        var layerStart = new Option<int?>("--layer-start") { Description = "Width: first layer that may be pruned (default: LLM-Pruner's range).", HelpName = "N" };
        var layerEnd = new Option<int?>("--layer-end") { Description = "Width: end (exclusive) of the layers that may be pruned.", HelpName = "N" };
        var oneShot = new Option<bool>("--one-shot") { Description = "Depth: score once and remove the lowest layers together (default: PIP's iterative removal)." };
        var loraSteps = new Option<int>("--lora-steps") { Description = "LoRA recovery steps after each pruning, before measuring (0: none).", DefaultValueFactory = _ => 0, HelpName = "N" }.AtLeast(0);
        var loraLr = new Option<double>("--lora-lr") { Description = "LoRA recovery: peak learning rate.", DefaultValueFactory = _ => TorchAdaPrunerConstants.DefaultRecoveryLearningRate, HelpName = "LR" };
        var loraRank = new Option<int>("--lora-rank") { Description = "LoRA recovery: rank.", DefaultValueFactory = _ => Pip.Torch.Training.Lora.LoraConstants.DefaultRank, HelpName = "R" }.AtLeast(1);
        var recovery = new Option<string?>("--recovery") { Description = "LoRA recovery: the training text (default: each trial's calibration corpus). It must not hold the --valid text either.", HelpName = "FILE" };
        var cache = new Option<string?>("--cache") { Description = "A JSON table of evaluations to reuse and extend (same model, ratio, validation and recovery settings!).", HelpName = "FILE" };
        var dtype = CommonOptions.Dtype("The type to compute in (default: the checkpoint's where this device computes it fast, else float32).");
        var saveDtype = CommonOptions.Dtype("The type to store the pruned weights in (default: the checkpoint's torch_dtype).", "--save-dtype");
        var layout = PruneCommand.LayoutOption();
        var device = CommonOptions.Device();
        var overwrite = CommonOptions.Overwrite();
        var json = CommonOptions.Json();

        var command = new Command("search", "AdaPruner: search calibration data × importance metric with TPE (or random search) for the lowest validation perplexity, then prune with the best and save.")
        {
            model, output, calibration, valid, validTokens, window, ratio, mode, trials, searcher, seed, startup, samples, seqLens, calibrationSeeds,
            metrics, aggregations, allocations, perturbers, norms, layerStart, layerEnd, oneShot, loraSteps, loraLr, loraRank, recovery, cache,
            dtype, saveDtype, layout, device, CommonOptions.AllowNonFinite(), overwrite, json,
        };
        CommandRunner.SetBody(command, context, async run =>
        {
            var ct = run.CancellationToken;
            var total = Stopwatch.StartNew();
            bool Given(Option option) => run.ParseResult.GetResult(option) is { Implicit: false };

            // 1. Paths, before anything slow.
            var overwriting = run.Get(overwrite);
            var outFolder = ModelLoading.CheckOutputFolder(run.Require(output), overwriting);
            var modelFolder = ModelLoading.RequireModelFolder(ModelLoading.ModelFolderOrDefault(run.Get(model), context));
            if (string.Equals(modelFolder, outFolder, StringComparison.Ordinal))
                throw new CliInputException($"Output folder '{outFolder}' is the model folder; write the pruned model to another folder.");
            var corpora = new List<AdaPrunerCorpus>();
            foreach (var file in Split(run.Require(calibration)))
            {
                var full = Path.GetFullPath(file);
                if (!File.Exists(full)) throw new CliInputException($"--calibration: file '{full}' does not exist.");
                var corpus = AdaPrunerCorpus.FromFile(full);
                if (corpora.Any(c => c.Name == corpus.Name))
                    throw new CliInputException($"--calibration: two files are named '{corpus.Name}' ('{corpora.First(c => c.Name == corpus.Name).Path}' and '{full}'); give files with distinct names.");
                corpora.Add(corpus);
            }

            if (corpora.Count == 0) throw new CliInputException("--calibration: give at least one file.");
            var validFile = Path.GetFullPath(run.Require(valid));
            if (!File.Exists(validFile)) throw new CliInputException($"--valid: file '{validFile}' does not exist.");
            var recoveryFile = run.Get(recovery) is { } r ? Path.GetFullPath(r) : null;
            if (recoveryFile is not null && !File.Exists(recoveryFile)) throw new CliInputException($"--recovery: file '{recoveryFile}' does not exist.");
            var cacheFile = run.Get(cache) is { } c ? Path.GetFullPath(c) : null;

            // 2. Every option, validated together.
            var width = run.Require(mode) == "width";
            var errors = new List<string>();
            var widthOnly = new Option[] { aggregations, allocations, layerStart, layerEnd }.Where(Given).Select(o => o.Name).ToArray();
            var depthOnly = new Option[] { perturbers, norms, oneShot }.Where(Given).Select(o => o.Name).ToArray();
            if (width && depthOnly.Length > 0) errors.Add($"{string.Join(", ", depthOnly)}: depth options need --mode depth.");
            if (!width && widthOnly.Length > 0) errors.Add($"{string.Join(", ", widthOnly)}: width options need --mode width.");
            if (run.Get(loraSteps) == 0 && new Option[] { loraLr, loraRank, recovery }.Where(Given).Select(o => o.Name).ToArray() is { Length: > 0 } lora)
                errors.Add($"{string.Join(", ", lora)}: recovery options need --lora-steps.");
            var metricNames = run.Get(metrics) is { } m ? Split(m) : null;
            var known = width ? TorchWidthMetrics.AllNames : TorchMetrics.AllNames;
            foreach (var name in metricNames ?? [])
            {
                if (!known.Contains(name)) errors.Add($"--metrics: '{name}' is not a {(width ? "width" : "depth")} metric; use {string.Join(", ", known)}.");
            }

            var spaceOptions = new AdaPrunerSpaceOptions
            {
                Mode = width ? AdaPrunerMode.Width : AdaPrunerMode.Depth,
                Corpora = corpora,
                SampleCounts = Integers(run.Require(samples), "--samples", errors),
                SequenceLengths = Integers(run.Require(seqLens), "--seq-lens", errors),
                CalibrationSeeds = Integers(run.Require(calibrationSeeds), "--calibration-seeds", errors),
                Metrics = metricNames,
                GroupReductions = [.. Split(run.Require(aggregations)).Select(a => GroupReduction.TryParse(a, out var g) ? g : Bad<WidthGroupReduction>(errors, $"--aggregations: '{a}' is not sum, mean, max or product."))],
                Allocations = [.. Split(run.Require(allocations)).Select(a => Enum.TryParse<WidthAllocation>(a, true, out var w) && Enum.IsDefined(w) ? w : Bad<WidthAllocation>(errors, $"--allocations: '{a}' is not uniform or adaptive."))],
                Perturbers = Split(run.Require(perturbers)),
                Norms = Split(run.Require(norms)),
            };
            AdaPrunerSpace? space = null;
            try
            {
                space = new AdaPrunerSpace(spaceOptions);
            }
            catch (OptionsValidationException e)
            {
                errors.AddRange(e.Failures.Select(WithOptionName));
            }

            var objectiveOptions = new TorchAdaPrunerOptions
            {
                Ratio = run.Require(ratio),
                ValidationWindow = run.Require(window),
                LayerStart = run.Get(layerStart),
                LayerEnd = run.Get(layerEnd),
                OneShot = run.Get(oneShot),
                RecoverySteps = run.Require(loraSteps),
                RecoveryPath = recoveryFile,
                RecoveryLearningRate = run.Require(loraLr),
                LoraRank = run.Require(loraRank),
            };
            try
            {
                objectiveOptions.Check();
            }
            catch (ValidationException e)
            {
                errors.AddRange(e.Message.Split(Environment.NewLine).Skip(1).Select(l => l.Trim().TrimStart('-', ' ').Replace("Ratio:", "--ratio:", StringComparison.Ordinal)));
            }

            var searchOptions = new AdaPrunerSearchOptions
            {
                MaxTrials = run.Require(trials),
                Searcher = run.Require(searcher) == "random" ? AdaPrunerSearcherKind.Random : AdaPrunerSearcherKind.Tpe,
                Seed = run.Require(seed),
                StartupTrials = run.Get(startup),
            };
            if (errors.Count > 0 || space is null)
                throw new CliInputException($"{errors.Count} invalid option(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors.Distinct()));

            // 3. The held-out check, the model, the validation tokens and the cache.
            try
            {
                AdaPrunerCalibration.CheckDisjoint(corpora.Select(x => x.Path).Concat(recoveryFile is null ? [] : [recoveryFile]), validFile, cancellationToken: ct);
            }
            catch (InvalidDataException e)
            {
                throw new CliInputException("--valid: " + e.Message, e);
            }

            using var lm = ModelLoading.Load(run, modelFolder, run.Get(dtype), run.Require(device));
            var tokenizer = ModelLoading.RequireTokenizer(lm);
            var storedType = run.Get(saveDtype) ?? TorchCausalLM.DtypeOf(lm.Config);
            var validationTokens = TorchAdaPrunerObjective.LoadValidationTokens(validFile, tokenizer, run.Require(validTokens));
            if (validationTokens.Count < objectiveOptions.ValidationWindow)
                throw new CliInputException($"--valid: '{validFile}' gives {validationTokens.Count} tokens, fewer than one window of {objectiveOptions.ValidationWindow}.");
            var evaluations = cacheFile is not null && File.Exists(cacheFile) ? LoadCache(cacheFile) : new AdaPrunerCache();
            var objective = new TorchAdaPrunerObjective(lm, validationTokens, objectiveOptions, run.LoggerFactory);
            var dense = objective.EvaluateDense(ct);
            run.Logger.LogInformation("Dense model: validation perplexity {Perplexity:F3} on {Tokens:N0} tokens of {File}. Space: {Grid:N0} grid points; {Trials} trials of {Searcher}.",
                dense.Perplexity, objective.ValidationTokenCount, validFile, space.GridSize, searchOptions.MaxTrials, run.Require(searcher));

            // 4. The search.
            var clock = Stopwatch.StartNew();
            var progress = run.WithBars(new Progress<AdaPrunerProgress>(_ => { }), p =>
                ((string Key, string Description, double Completed, double Total)?)("search", $"Trials (best {p.Best?.Objective?.ToString("F3", CultureInfo.InvariantCulture) ?? "-"})", p.TrialCount, p.MaxTrials));
            var search = new AdaPrunerSearch(space, searchOptions, run.LoggerFactory.CreateLogger("pip-prune.search.trials"));
            AdaPrunerReport report;
            try
            {
                report = await search.RunAsync(objective, evaluations, progress, ct).ConfigureAwait(false);
            }
            finally
            {
                if (cacheFile is not null && evaluations.Count > 0) await evaluations.SaveAsync(cacheFile, CancellationToken.None).ConfigureAwait(false);
            }

            var settings = new Dictionary<string, string>(objective.Describe(), StringComparer.Ordinal)
            {
                ["model"] = modelFolder,
                ["validation_text"] = validFile,
                ["calibration"] = string.Join(", ", corpora.Select(x => $"{x.Name}={x.Path}")),
            };
            report = report with { Settings = settings, DenseObjective = dense.Perplexity };
            var searchSeconds = clock.Elapsed.TotalSeconds;
            if (report.Best?.Configuration is not { } best)
                throw new InvalidOperationException($"Every one of the {report.Trials.Count} trials failed (first error: {report.Trials.FirstOrDefault()?.Error}); nothing to save.");

            // 5. The best configuration, applied to a fresh copy, and the output folder in one atomic move.
            run.Logger.LogInformation("Best: {Configuration}: perplexity {Perplexity:F3} (trial {Trial}); pruning the model with it.", best.Key, report.Best.Objective, report.Best.Number);
            using var pruned = await objective.PruneAsync(best, run.WithBars(new Progress<PruningProgress>(_ => { }), ProgressBars.Pruning), ct).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            var extras = lm.SourceFolder is null ? [] : TorchCausalLM.CompanionFiles.Select(f => Path.Combine(lm.SourceFolder, f)).Where(File.Exists).ToList();
            using var laidOut = PruneCommand.LayOut(pruned.Model, run.Require(layout), modelFolder, pruned.Model.ParameterCount, run.Logger);
            var config = laidOut.Config.WithTorchDtype(CommonOptions.DtypeName(storedType));
            run.Logger.LogInformation("Writing {Folder} ({Dtype}, layout {Layout}).", outFolder, CommonOptions.DtypeName(storedType), CheckpointLayouts.Name(laidOut.Layout));
            // The reports and the chart are written straight into the checkpoint's temporary folder (no staging folder).
            TorchSafeTensors.Save(outFolder, config, laidOut.Weights, new CheckpointSaveOptions
            {
                Overwrite = overwriting,
                ExtraFiles = extras,
                WriteExtraFiles = (temp, token) =>
                {
                    report.WriteAsync(Path.Combine(temp, ReportName), token).GetAwaiter().GetResult();
                    Charts.WriteBestSoFar([(report.Searcher == AdaPrunerSearcherKind.Tpe ? "TPE" : "Random search", report.BestSoFar, [.. report.Trials.Select(t => t.Objective ?? double.NaN)])],
                        [("dense model", dense.Perplexity)], Path.Combine(temp, ChartName), $"AdaPruner search ({(width ? "width" : "depth")}, ratio {objectiveOptions.Ratio.ToString(CultureInfo.InvariantCulture)})",
                        "Validation perplexity (lower is better)");
                    PruningReportJson.Write(pruned.Report, Path.Combine(temp, PruningReportName));
                },
            }, storedType, ct);

            var summary = new SearchResult(
                Mode: width ? "width" : "depth",
                Model: modelFolder,
                Output: outFolder,
                Report: Path.Combine(outFolder, ReportName),
                Chart: Path.Combine(outFolder, ChartName),
                Validation: validFile,
                ValidationTokens: objective.ValidationTokenCount,
                Calibration: [.. corpora.Select(x => x.Path)],
                Searcher: run.Require(searcher),
                Seed: searchOptions.Seed,
                Trials: report.Trials.Count,
                Evaluations: report.Evaluations,
                CachedTrials: report.CachedTrials,
                FailedTrials: report.FailedTrials,
                GridSize: report.GridSize,
                DensePerplexity: Math.Round(dense.Perplexity, 6),
                BestPerplexity: Math.Round(report.Best.Objective ?? double.NaN, 6),
                FinalPerplexity: Math.Round(pruned.Evaluation.Objective, 6),
                BestTrial: report.Best.Number,
                Best: new Dictionary<string, string>(report.Best.Parameters.Select(p => KeyValuePair.Create(p.Key, p.Value.ToString())), StringComparer.Ordinal),
                BestKey: best.Key,
                ParametersBefore: pruned.Evaluation.ParametersBefore,
                ParametersAfter: pruned.Evaluation.ParametersAfter,
                RemovedParameterRatio: Math.Round(pruned.Evaluation.RemovedParameterRatio, 6),
                LoraSteps: objectiveOptions.RecoverySteps,
                SaveDtype: CommonOptions.DtypeName(storedType),
                SearchSeconds: Math.Round(searchSeconds, 3),
                Seconds: Math.Round(total.Elapsed.TotalSeconds, 3));
            if (run.Get(json)) ResultWriter.WriteJson(run.Out, summary);
            else WriteTable(run.Out, summary);
            return ExitCodes.Success;
        });
        return command;
    }

    private static string Join(IEnumerable<int> values) => string.Join(',', values.Select(v => v.ToString(CultureInfo.InvariantCulture)));

    private static List<string> Split(string text) => [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private static List<int> Integers(string text, string option, List<string> errors)
    {
        var values = new List<int>();
        foreach (var item in Split(text))
        {
            if (int.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) values.Add(v);
            else errors.Add($"{option}: '{item}' is not an integer.");
        }

        return values;
    }

    private static T Bad<T>(List<string> errors, string error)
    {
        errors.Add(error);
        return default!;
    }

    private static AdaPrunerCache LoadCache(string file)
    {
        try
        {
            return AdaPrunerCache.Load(file);
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException("--cache: " + e.Message, e);
        }
    }

    /// <summary>Prefixes a space-validation message with the command-line option it comes from.</summary>
    private static string WithOptionName(string failure)
    {
        var member = failure.Split(": ", 2)[0];
        string? option = member.Split('.').LastOrDefault() switch
        {
            nameof(AdaPrunerSpaceOptions.SampleCounts) => "--samples",
            nameof(AdaPrunerSpaceOptions.SequenceLengths) => "--seq-lens",
            nameof(AdaPrunerSpaceOptions.CalibrationSeeds) => "--calibration-seeds",
            nameof(AdaPrunerSpaceOptions.Metrics) => "--metrics",
            nameof(AdaPrunerSpaceOptions.GroupReductions) => "--aggregations",
            nameof(AdaPrunerSpaceOptions.Allocations) => "--allocations",
            nameof(AdaPrunerSpaceOptions.Perturbers) => "--perturbers",
            nameof(AdaPrunerSpaceOptions.Norms) => "--norms",
            nameof(AdaPrunerSpaceOptions.Corpora) => "--calibration",
            _ => null,
        };
        return option is null ? failure : $"{option}: {failure}";
    }

    private static void WriteTable(TextWriter output, SearchResult r)
    {
        static string P(double v) => ResultWriter.Number(v, 3);
        List<(string, string)> rows =
        [
            ("Model", r.Model),
            ("Pruned model", r.Output),
            ("Search report", r.Report),
            ("Chart", r.Chart),
            ("Validation", $"{ResultWriter.Count(r.ValidationTokens)} tokens of {r.Validation}"),
            ("Calibration corpora", string.Join(", ", r.Calibration)),
            ("Search", $"{r.Searcher} (seed {r.Seed}), {r.Trials} trials over {ResultWriter.Count(r.GridSize)} grid points: {r.Evaluations} evaluated, {r.CachedTrials} looked up, {r.FailedTrials} failed"),
            ("Best configuration", $"{r.BestKey} (trial {r.BestTrial})"),
            ("Perplexity", $"dense {P(r.DensePerplexity)} → best {P(r.BestPerplexity)}" + (r.LoraSteps > 0 ? $" (after {r.LoraSteps} LoRA steps)" : "")),
            ("Parameters", $"{ResultWriter.Count(r.ParametersBefore)} → {ResultWriter.Count(r.ParametersAfter)} ({ResultWriter.Number(100 * r.RemovedParameterRatio, 2)} % removed)"),
            ("Saved as", r.SaveDtype),
            ("Time", $"{ResultWriter.Number(r.Seconds, 1)} s (search {ResultWriter.Number(r.SearchSeconds, 1)} s)"),
        ];
        ResultWriter.WriteTable(output, rows);
    }
}

/// <summary>The result of <c>search</c>.</summary>
internal sealed record SearchResult(string Mode, string Model, string Output, string Report, string Chart, string Validation, int ValidationTokens,
    IReadOnlyList<string> Calibration, string Searcher, int Seed, int Trials, int Evaluations, int CachedTrials, int FailedTrials, long GridSize,
    double DensePerplexity, double BestPerplexity, double FinalPerplexity, int BestTrial, IReadOnlyDictionary<string, string> Best, string BestKey,
    long ParametersBefore, long ParametersAfter, double RemovedParameterRatio, int LoraSteps, string SaveDtype, double SearchSeconds, double Seconds);
