// Pip.AdaPrunerStudy: AdaPruner (Kong et al., AAAI 2025, "Sample-aware Adaptive Structured Pruning for Large Language
// Models") on the demo model at ~20 % width pruning, in three parts:
//   (i)   the WHOLE grid of a small discrete solution space (calibration corpus × samples × sequence length × metric ×
//         group aggregation) is evaluated once: each point prunes a fresh copy of the model and measures the perplexity
//         of held-out validation tokens; every objective goes into a JSON table (work/grid.json; a rerun resumes it);
//   (ii)  LLM-Pruner's default configuration (first-order Taylor, sum aggregation, 10 samples of 64 tokens of the first
//         corpus, uniform over the default layer range) is evaluated as the fixed baseline;
//   (iii) TPE and random search are run --seeds times each against the table (the objective is deterministic, so
//         replaying the table is the same as re-running), reporting how many trials each needs to reach the grid's best
//         (mean, median, how often within the budget) and the mean best-so-far curves (chart).
// The validation text (WikiText-2 validation by default) is a different file from the calibration corpora, and the
// program checks that no line of it appears in them (AdaPrunerCalibration.CheckDisjoint).
//
//   dotnet run -c Release --project samples/Pip.AdaPrunerStudy -- --corpus ../shared/data/corpus
//       --valid ../shared/data/eval/wikitext-2/wiki.valid.tokens [--model models/pip-demo] [--ratio 0.2]
//       [--valid-tokens 16384] [--window 128] [--corpora brown,nlp-corpus] [--samples 4,16] [--seq-lens 64,128]
//       [--metrics taylor,taylor-second,taylor-mix,wanda-sp,flap,magnitude] [--aggregations sum,max]
//       [--seeds 20] [--budget N] [--startup N] [--max-points N] [--work DIR] [--out results.json] [--plot curves.png]
//
// --max-points N evaluates at most N new grid points (a smoke run; the replay then treats missing points as failed
// trials, so its numbers mean nothing until the table is complete).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pip;
using Pip.Search;
using Pip.Torch;
using Pip.Torch.Search;
using ScottPlot;

var cli = Cli.Parse(args);
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }).SetMinimumLevel(LogLevel.Information)
    .AddFilter("Pip", LogLevel.Warning));
var log = loggerFactory.CreateLogger("AdaPrunerStudy");
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var ct = cts.Token;

var repo = Cli.FindRepoRoot();
var corpusDir = Path.GetFullPath(cli.Get("corpus") ?? Cli.FindUp(repo, Path.Combine("shared", "data", "corpus")));
var validPath = Path.GetFullPath(cli.Get("valid") ?? Path.Combine(Path.GetDirectoryName(corpusDir)!, "eval", "wikitext-2", "wiki.valid.tokens"));
var modelDir = Path.GetFullPath(cli.Get("model") ?? Path.Combine(repo, "models", "pip-demo"));
var workDir = Path.GetFullPath(cli.Get("work") ?? Path.Combine(repo, "artifacts", "adapruner-study"));
var tablePath = Path.Combine(workDir, "grid.json");
var outPath = Path.GetFullPath(cli.Get("out") ?? Path.Combine(workDir, "results.json"));
var plotPath = Path.GetFullPath(cli.Get("plot") ?? Path.Combine(workDir, "best-so-far.png"));
Directory.CreateDirectory(workDir);
var total = Stopwatch.StartNew();

// ---- The space. ----
var corpora = Cli.List(cli.Get("corpora") ?? "brown,nlp-corpus").Select(n => new AdaPrunerCorpus(n, Path.Combine(corpusDir, n + ".txt"))).ToList();
var spaceOptions = new AdaPrunerSpaceOptions
{
    Mode = AdaPrunerMode.Width,
    Corpora = corpora,
    SampleCounts = [.. Cli.List(cli.Get("samples") ?? "4,16").Select(Cli.ParseInt)],
    SequenceLengths = [.. Cli.List(cli.Get("seq-lens") ?? "64,128").Select(Cli.ParseInt)],
    Metrics = Cli.List(cli.Get("metrics") ?? "taylor,taylor-second,taylor-mix,wanda-sp,flap,magnitude"),
    GroupReductions = [.. Cli.List(cli.Get("aggregations") ?? "sum,max").Select(a => GroupReduction.TryParse(a, out var g) ? g : throw new ArgumentException($"--aggregations: '{a}'?"))],
    Allocations = [WidthAllocation.Uniform],
};
var space = new AdaPrunerSpace(spaceOptions);
var distinct = space.DistinctConfigurations();
log.LogInformation("Space: {Grid} grid points, {Distinct} distinct configurations (data-free metrics ignore the data, FLAP the aggregation).", space.GridSize, distinct.Count);

// ---- Held-out check, model, validation tokens. ----
AdaPrunerCalibration.CheckDisjoint(corpora.Select(c => c.Path), validPath, cancellationToken: ct);
using var dense = TorchCausalLM.Load(modelDir, TorchSharp.torch.ScalarType.Float32);
var validationTokens = TorchAdaPrunerObjective.LoadValidationTokens(validPath, dense.Tokenizer!, cli.Int("valid-tokens", TorchAdaPrunerConstants.DefaultValidationTokens));
var objective = new TorchAdaPrunerObjective(dense, validationTokens,
    new TorchAdaPrunerOptions { Ratio = cli.Double("ratio", 0.2), ValidationWindow = cli.Int("window", 128) }, loggerFactory);
var clock = Stopwatch.StartNew();
double densePerplexity = objective.EvaluateDense(ct).Perplexity;
log.LogInformation("Dense model {Model}: validation perplexity {Ppl:F3} on {Tokens:N0} tokens of {Valid} ({Seconds:F1} s).",
    modelDir, densePerplexity, validationTokens.Count, validPath, clock.Elapsed.TotalSeconds);

// ---- (i) The grid, resumed from the table. ----
var table = File.Exists(tablePath) ? AdaPrunerCache.Load(tablePath) : new AdaPrunerCache();
int maxNew = cli.Int("max-points", int.MaxValue);
int evaluated = 0;
var pointSeconds = new List<double>();
foreach (var configuration in distinct)
{
    if (table.TryGet(configuration, out _)) continue;
    if (evaluated >= maxNew) break;
    var evaluation = await objective.EvaluateAsync(configuration, ct);
    table.Set(configuration, evaluation);
    await table.SaveAsync(tablePath, CancellationToken.None);
    evaluated++;
    pointSeconds.Add(evaluation.Seconds);
    int missing = distinct.Count(c => !table.TryGet(c, out _));
    log.LogInformation("Grid point {Done}/{Total}: {Key}: perplexity {Ppl:F3}, {Removed:P2} removed, {Seconds:F1} s (pruning {Pruning:F1} s, measuring {Measuring:F1} s); ~{Eta:F0} min left.",
        distinct.Count - missing, distinct.Count, configuration.Key, evaluation.Objective, evaluation.RemovedParameterRatio, evaluation.Seconds,
        evaluation.PruningSeconds, evaluation.EvaluationSeconds, missing * pointSeconds.Average() / 60);
}

var gridRows = distinct.Where(c => table.TryGet(c, out _)).Select(c => { table.TryGet(c, out var e); return (Configuration: c, Evaluation: e!); })
    .OrderBy(r => r.Evaluation.Objective).ToList();
bool complete = gridRows.Count == distinct.Count;
if (!complete) log.LogWarning("The table holds {Have} of {Total} grid points: the replay below treats the missing ones as failed trials.", gridRows.Count, distinct.Count);
double gridBest = gridRows.Count > 0 ? gridRows[0].Evaluation.Objective : double.NaN;

// ---- (ii) LLM-Pruner's default configuration. ----
var baseline = new AdaPrunerConfiguration
{
    Mode = AdaPrunerMode.Width,
    Corpus = corpora[0].Name,
    CorpusPath = corpora[0].Path,
    SampleCount = AdaPrunerConstants.LlmPrunerSampleCount,
    SequenceLength = AdaPrunerConstants.LlmPrunerSequenceLength,
    Metric = AdaPrunerConstants.LlmPrunerMetric,
    GroupReduction = WidthGroupReduction.Sum,
    Allocation = WidthAllocation.Uniform,
};
if (!table.TryGet(baseline, out var baselineEvaluation))
{
    baselineEvaluation = await objective.EvaluateAsync(baseline, ct);
    table.Set(baseline, baselineEvaluation);
    await table.SaveAsync(tablePath, CancellationToken.None);
}

int baselineRank = gridRows.Count(r => r.Evaluation.Objective < baselineEvaluation.Objective) + 1;
log.LogInformation("LLM-Pruner default ({Key}): perplexity {Ppl:F3}; it would rank {Rank} of {Count} in the grid; grid best {Best:F3} ({BestKey}).",
    baseline.Key, baselineEvaluation.Objective, baselineRank, gridRows.Count + 1, gridBest, gridRows.FirstOrDefault().Configuration?.Key);

// ---- (iii) TPE against random search, replayed on the table. ----
int seeds = cli.Int("seeds", 20);
int budget = cli.Int("budget", (int)space.GridSize);
int? startup = cli.Get("startup") is { } s ? Cli.ParseInt(s) : null;
var replay = table.AsObjective();
// "Near best": within 0.25 % of the grid best (the landscape is flat: many configurations are within noise of it).
double nearTolerance = double.IsNaN(gridBest) ? 0 : gridBest * 0.0025;
var runs = new Dictionary<AdaPrunerSearcherKind, List<(int Seed, int? TrialsToBest, IReadOnlyList<double> Curve, int? EvaluationsToBest, int? EvaluationsToNearBest)>>
{
    [AdaPrunerSearcherKind.Tpe] = [],
    [AdaPrunerSearcherKind.Random] = [],
};
foreach (var kind in runs.Keys)
{
    for (int seed = 0; seed < seeds; seed++)
    {
        var report = await new AdaPrunerSearch(space, new AdaPrunerSearchOptions { MaxTrials = budget, Searcher = kind, Seed = seed, StartupTrials = startup })
            .RunAsync(replay, cancellationToken: ct);
        runs[kind].Add((seed, double.IsNaN(gridBest) ? null : report.TrialsToReach(gridBest), report.BestSoFar,
            double.IsNaN(gridBest) ? null : report.EvaluationsToReach(gridBest), double.IsNaN(gridBest) ? null : report.EvaluationsToReach(gridBest, nearTolerance)));
    }
}

object Summary(AdaPrunerSearcherKind kind)
{
    var list = runs[kind];
    var censored = list.Select(r => (double)(r.TrialsToBest ?? budget + 1)).Order().ToArray();
    var reached = list.Where(r => r.TrialsToBest is not null).Select(r => (double)r.TrialsToBest!.Value).ToArray();
    return new
    {
        searcher = kind.ToString().ToLowerInvariant(),
        runs = list.Count,
        reached_grid_best = reached.Length,
        mean_trials_to_best_censored = censored.Length == 0 ? double.NaN : censored.Average(),
        median_trials_to_best_censored = Median(censored),
        mean_trials_to_best_when_reached = reached.Length == 0 ? double.NaN : reached.Average(),
        trials_to_best = list.Select(r => r.TrialsToBest).ToArray(),
        // Distinct evaluations (the cost: cached duplicates are free) to the grid best and to within 0.25 % of it.
        mean_evaluations_to_best_censored = list.Select(r => (double)(r.EvaluationsToBest ?? budget + 1)).Average(),
        median_evaluations_to_best_censored = Median([.. list.Select(r => (double)(r.EvaluationsToBest ?? budget + 1)).Order()]),
        mean_evaluations_to_near_best_censored = list.Select(r => (double)(r.EvaluationsToNearBest ?? budget + 1)).Average(),
        median_evaluations_to_near_best_censored = Median([.. list.Select(r => (double)(r.EvaluationsToNearBest ?? budget + 1)).Order()]),
        near_best_tolerance = nearTolerance,
        mean_best_so_far = MeanCurve(list.Select(r => r.Curve).ToList()),
    };
}

var tpeSummary = Summary(AdaPrunerSearcherKind.Tpe);
var randomSummary = Summary(AdaPrunerSearcherKind.Random);
foreach (var kind in runs.Keys)
{
    var t = runs[kind].Select(r => (double)(r.TrialsToBest ?? budget + 1)).ToArray();
    log.LogInformation("{Searcher}: grid best reached in {Reached}/{Seeds} runs within {Budget} trials; trials to reach it: mean {Mean:F1}, median {Median:F1} (not reached counted as {Censor}).",
        kind, runs[kind].Count(r => r.TrialsToBest is not null), seeds, budget, t.Average(), Median(t), budget + 1);
    var e = runs[kind].Select(r => (double)(r.EvaluationsToBest ?? budget + 1)).Order().ToArray();
    var n = runs[kind].Select(r => (double)(r.EvaluationsToNearBest ?? budget + 1)).Order().ToArray();
    log.LogInformation("{Searcher}: distinct evaluations to the grid best: mean {Mean:F1}, median {Median:F1}; to within 0.25 % of it: mean {NearMean:F1}, median {NearMedian:F1}.",
        kind, e.Average(), Median(e), n.Average(), Median(n));
}

// ---- Outputs. ----
WriteChart(plotPath, runs.ToDictionary(k => k.Key.ToString().ToUpperInvariant() == "TPE" ? "TPE" : "Random search", k => MeanCurve(k.Value.Select(r => r.Curve).ToList())),
    gridBest, baselineEvaluation.Objective, densePerplexity, seeds);
var results = new
{
    description = "AdaPruner study on the demo model: whole-grid evaluation, LLM-Pruner default baseline, TPE vs random search replayed on the grid table.",
    model = modelDir,
    validation = new { path = validPath, tokens = validationTokens.Count, window = cli.Int("window", 128), note = "held out: a separate file, checked to share no line of 8+ words with the calibration corpora" },
    calibration = corpora,
    ratio = cli.Double("ratio", 0.2),
    dense_perplexity = densePerplexity,
    grid = new
    {
        size = space.GridSize,
        distinct = distinct.Count,
        evaluated = gridRows.Count,
        complete,
        best = gridRows.Count > 0 ? new { key = gridRows[0].Configuration.Key, perplexity = gridBest } : null,
        seconds_per_point_this_run = pointSeconds.Count > 0 ? pointSeconds.Average() : double.NaN,
        table = tablePath,
        points = gridRows.Select(r => new
        {
            key = r.Configuration.Key,
            corpus = r.Configuration.Corpus,
            samples = r.Configuration.SampleCount,
            seq_len = r.Configuration.SequenceLength,
            metric = r.Configuration.Metric,
            aggregation = r.Configuration.UsesGroupReduction ? r.Configuration.GroupReduction?.ToString().ToLowerInvariant() : null,
            perplexity = r.Evaluation.Objective,
            removed_parameter_ratio = r.Evaluation.RemovedParameterRatio,
            seconds = r.Evaluation.Seconds,
        }),
    },
    llm_pruner_default = new { key = baseline.Key, perplexity = baselineEvaluation.Objective, removed_parameter_ratio = baselineEvaluation.RemovedParameterRatio, rank_in_grid = baselineRank },
    search = new { seeds, budget, startup_trials = startup?.ToString(CultureInfo.InvariantCulture) ?? "min(10, budget/3)", tpe = tpeSummary, random = randomSummary },
    plot = plotPath,
    seconds = total.Elapsed.TotalSeconds,
};
Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
File.WriteAllText(outPath, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
log.LogInformation("Wrote {Out} and {Plot} in {Seconds:F0} s.", outPath, plotPath, total.Elapsed.TotalSeconds);
return 0;

static double Median(double[] sorted)
{
    if (sorted.Length == 0) return double.NaN;
    var s = sorted.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

static double[] MeanCurve(IReadOnlyList<IReadOnlyList<double>> curves)
{
    if (curves.Count == 0) return [];
    int n = curves.Max(c => c.Count);
    return [.. Enumerable.Range(0, n).Select(i =>
    {
        var values = curves.Where(c => i < c.Count && double.IsFinite(c[i])).Select(c => c[i]).ToArray();
        return values.Length == curves.Count ? values.Average() : double.NaN;
    })];
}

static void WriteChart(string path, IReadOnlyDictionary<string, double[]> curves, double gridBest, double baseline, double dense, int seeds)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    using var plot = new Plot();
    foreach (var (name, curve) in curves)
    {
        var xs = Enumerable.Range(1, curve.Length).Where(i => double.IsFinite(curve[i - 1])).Select(i => (double)i).ToArray();
        var ys = curve.Where(double.IsFinite).ToArray();
        if (xs.Length == 0) continue;
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = $"{name}: mean best so far ({seeds} seeds)";
        line.LineWidth = 2;
        line.MarkerSize = 0;
        line.ConnectStyle = ConnectStyle.StepHorizontal;
    }

    foreach (var (name, value, pattern) in new[] { ("grid best", gridBest, LinePattern.Solid), ("LLM-Pruner default", baseline, LinePattern.Dashed), ("dense model", dense, LinePattern.Dotted) })
    {
        if (!double.IsFinite(value)) continue;
        var h = plot.Add.HorizontalLine(value);
        h.LegendText = $"{name} ({value.ToString("F2", CultureInfo.InvariantCulture)})";
        h.LinePattern = pattern;
    }

    plot.Title("AdaPruner on the demo model: TPE vs random search, replayed on the whole grid");
    plot.XLabel("Trial");
    plot.YLabel("Validation perplexity (lower is better)");
    plot.ShowLegend(Edge.Right);
    plot.SavePng(path, 1100, 600);
}
