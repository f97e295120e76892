// Pip.IdeaPrune: the IDEA Prune experiment (Li et al., 2025, "IDEA Prune: An Integrated Enlarge-and-Prune Pipeline in
// Generative Language Model Pretraining") on the demo model's corpus, three arms with the SAME training-token budget:
//   (a) scratch  — the small model (FFN = the demo width) trained from scratch, one warm-up + cosine schedule;
//   (b) idea     — an enlarged model (FFN × --enlarge) trained under ONE warm-up + cosine schedule, its FFN width shrunk
//                  gradually to the small width inside [prune-start, prune-end) (EMA gradient-sensitivity scores,
//                  cubic kept-width schedule), then recovering until the schedule ends; the masks are then removed
//                  physically (a standard checkpoint with the small intermediate_size);
//   (c) oneshot  — the same enlarged model trained (own full schedule) for as many steps as (b)'s pre-pruning phase,
//                  pruned one-shot to the small width by the same sensitivity score (mean over --oneshot-batches
//                  batches), then retrained with a re-warm-up for the remaining steps.
// With --kd, (b) distils from a snapshot of the enlarged model taken when pruning starts, and (c)'s retraining from
// the enlarged model before its one-shot pruning. Validation: held-out lines (every 50th, as in samples/Pip.TrainDemo),
// tokenized with the demo tokenizer (models/pip-demo).
//
//   dotnet run -c Release --project samples/Pip.IdeaPrune -- --corpus ../shared/data/corpus [--tokens 600000]
//       [--layers 4] [--hidden 128] [--ffn 352] [--enlarge 2] [--seq 128] [--batch 8] [--lr 2e-3]
//       [--warmup-frac 0.05] [--prune-start-frac 0.3] [--prune-end-frac 0.6] [--interval 10] [--beta 0.85]
//       [--shape cubic|linear] [--kd] [--kd-alpha 0.5] [--kd-temperature 2] [--oneshot-batches 8] [--arms abc]
//       [--eval-every N] [--eval-seqs 32] [--final-eval-seqs 128] [--tokenizer DIR] [--work DIR]
//       [--out results.json] [--plot loss.png] [--save-models] [--max-train-lines N]
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch;
using Pip.Torch.Models;
using Pip.Torch.Training;
using Pip.Torch.Training.Distillation;
using Pip.Torch.Training.Idea;
using Pip.Training;
using static TorchSharp.torch;

var cli = Cli.Parse(args);
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }));
var log = loggerFactory.CreateLogger("IdeaPrune");
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };

var repo = Cli.FindRepoRoot();
var corpusDir = cli.Get("corpus") ?? Cli.FindUp(repo, Path.Combine("shared", "data", "corpus"));
var tokenizerDir = cli.Get("tokenizer") ?? Path.Combine(repo, "models", "pip-demo");
var workDir = Path.GetFullPath(cli.Get("work") ?? Path.Combine(repo, "artifacts", "idea-prune"));
var outPath = Path.GetFullPath(cli.Get("out") ?? Path.Combine(workDir, "results.json"));
var plotPath = Path.GetFullPath(cli.Get("plot") ?? Path.Combine(workDir, "loss.png"));
Directory.CreateDirectory(workDir);
var total = Stopwatch.StartNew();

// ---- 1. Corpus split as samples/Pip.TrainDemo: every 50th non-empty line (over both files, in order) is held out. ----
int maxTrainLines = cli.Int("max-train-lines", int.MaxValue);
var (trainLines, validLines) = DemoCorpus.Split(corpusDir);
if (trainLines.Count > maxTrainLines) trainLines = trainLines.Take(maxTrainLines).ToList();
if (validLines.Count > maxTrainLines) validLines = validLines.Take(maxTrainLines).ToList();
log.LogInformation("Corpus {Dir}: {Train} training lines, {Valid} held-out lines.", corpusDir, trainLines.Count, validLines.Count);

// ---- 2. Demo tokenizer; token streams cached in the work folder (each line is <|bos|> text <|eos|>). ----
var tokenizer = HfTokenizer.Load(tokenizerDir);
int eosId = tokenizer.EosTokenId ?? throw new InvalidOperationException($"The tokenizer in '{tokenizerDir}' has no EOS token.");
string suffix = maxTrainLines == int.MaxValue ? "" : $".{maxTrainLines}";
int[] trainTokens = Tokens.LoadOrEncode(Path.Combine(workDir, $"train{suffix}.tokens"), trainLines, tokenizer, eosId, log);
int[] validTokens = Tokens.LoadOrEncode(Path.Combine(workDir, $"valid{suffix}.tokens"), validLines, tokenizer, eosId, log);

// ---- 3. Models and the shared budget. ----
int seqLen = cli.Int("seq", 128);
int batchSize = cli.Int("batch", 8);
int hidden = cli.Int("hidden", 128);
int smallFfn = cli.Int("ffn", 352);
double enlarge = cli.Double("enlarge", 2.0);
int largeFfn = (int)Math.Round(smallFfn * enlarge);
if (largeFfn <= smallFfn) throw new ArgumentException($"--enlarge {enlarge} must make the FFN wider than {smallFfn}.");
var smallConfig = new LlamaConfig
{
    Family = DecoderFamily.Llama,
    VocabSize = tokenizer.VocabSize,
    HiddenSize = hidden,
    IntermediateSize = smallFfn,
    NumHiddenLayers = cli.Int("layers", 4),
    NumAttentionHeads = 8,
    NumKeyValueHeads = 4,
    HeadDim = hidden / 8,
    RmsNormEps = 1e-5,
    RopeTheta = 10000,
    MaxPositionEmbeddings = 1024,
    TieWordEmbeddings = true,
    BosTokenId = tokenizer.BosTokenId,
    EosTokenIds = [eosId],
    TorchDtype = "float32",
};
var largeConfig = smallConfig with { IntermediateSize = largeFfn };
var trainSet = new PackedSequences(trainTokens, seqLen);
var validSet = new PackedSequences(validTokens, seqLen);
int finalSeqs = Math.Min(cli.Int("final-eval-seqs", 128), validSet.Count);
var finalSet = new PackedSequences(validTokens.Take(finalSeqs * seqLen + 1).ToArray(), seqLen);

long tokensPerStep = (long)batchSize * seqLen;
long tokenBudget = cli.Long("tokens", 600_000);
int steps = (int)Math.Max(20, tokenBudget / tokensPerStep);
int warmup = Math.Max(1, (int)Math.Round(steps * cli.Double("warmup-frac", 0.05)));
int pruneStart = (int)Math.Round(steps * cli.Double("prune-start-frac", 0.3));
int pruneEnd = (int)Math.Round(steps * cli.Double("prune-end-frac", 0.6));
if (pruneStart < warmup || pruneEnd <= pruneStart || pruneEnd > steps)
    throw new ArgumentException($"The pruning window [{pruneStart}, {pruneEnd}) must start after the warm-up ({warmup} steps) and end by step {steps}.");
int evalEvery = cli.Int("eval-every", Math.Max(1, steps / 25));
double lr = cli.Double("lr", 2e-3);
bool kd = cli.Has("kd");
var kdOptions = new DistillationOptions { Alpha = cli.Double("kd-alpha", DistillationConstants.DefaultAlpha), Temperature = cli.Double("kd-temperature", DistillationConstants.DefaultTemperature) };
kdOptions.Validate();
var pruning = new IdeaPruneOptions
{
    TargetIntermediateSize = smallFfn,
    StartStep = pruneStart,
    EndStep = pruneEnd,
    UpdateInterval = cli.Int("interval", IdeaPruneConstants.DefaultUpdateInterval),
    EmaBeta = cli.Double("beta", IdeaPruneConstants.DefaultEmaBeta),
    Shape = Enum.Parse<WidthScheduleShape>(cli.Get("shape") ?? "cubic", ignoreCase: true),
};
pruning.Validate();
int oneShotBatches = cli.Int("oneshot-batches", 8);
string arms = cli.Get("arms") ?? "abc";
// --seed N (default 0) shifts every seed (initialisations and data order) to repeat the experiment independently.
int seedShift = int.Parse(cli.Get("seed") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
long SmallSeed = 20260601 + 1000L * seedShift, LargeSeed = 20260602 + 1000L * seedShift;
int DataSeed = 11 + 100 * seedShift;
log.LogInformation("Budget {Tokens:N0} tokens = {Steps} steps of {Batch}x{Seq} ({Epochs:F2} epochs); warm-up {Warmup}; pruning window [{Start}, {End}); FFN {Small} vs {Large}; KD: {Kd}.",
    steps * tokensPerStep, steps, batchSize, seqLen, steps * (double)tokensPerStep / trainSet.TargetTokenCount, warmup, pruneStart, pruneEnd, smallFfn, largeFfn, kd);

TrainingOptions Options(int maxSteps, int seed) => new()
{
    LearningRate = lr,
    MinLearningRateRatio = 0.1,
    WarmupSteps = warmup,
    MaxSteps = maxSteps,
    BatchSize = batchSize,
    WeightDecay = 0.1,
    Beta1 = 0.9,
    Beta2 = 0.95,
    MaxGradientNorm = 1.0,
    EvaluateEvery = evalEvery,
    MaxValidationSequences = cli.Int("eval-seqs", 32),
    Seed = seed,
    LogEvery = Math.Max(1, steps / 50),
};

var results = new List<ArmResult>();
try
{
    // ---- (a) the small model from scratch. ----
    if (arms.Contains('a'))
    {
        var sw = Stopwatch.StartNew();
        using var model = LlamaForCausalLM.CreateRandom(smallConfig, SmallSeed);
        using var trainer = new CausalLMTrainer(model, Options(steps, DataSeed), loggerFactory.CreateLogger("a-scratch"));
        var run = trainer.Train(trainSet, validSet, null, cts.Token);
        results.Add(Finish("a", "small model (FFN " + smallFfn + ") trained from scratch, one warm-up + cosine schedule", model, [Curve.From(run, 0)], run.History, sw.Elapsed));
    }

    // ---- (b) enlarge, then IDEA-prune inside the same run and schedule. ----
    if (arms.Contains('b'))
    {
        var sw = Stopwatch.StartNew();
        using var model = LlamaForCausalLM.CreateRandom(largeConfig, LargeSeed);
        var snapshot = new TeacherSnapshot(pruneStart - 1, kd);
        TrainingLoss loss = (m, batch) => snapshot.Teacher is { } teacher ? DistillationLoss.Compute(m, teacher, batch, kdOptions) : CausalLMTrainer.CrossEntropyLoss(m, batch);
        IdeaPruneResult run;
        try
        {
            run = IdeaPrune.Train(model, Options(steps, DataSeed), pruning, trainSet, validSet, loss, [snapshot], logger: loggerFactory.CreateLogger("b-idea"), cancellationToken: cts.Token);
        }
        finally
        {
            snapshot.Dispose();
        }
        if (!run.Pruned) throw new InvalidOperationException("Arm (b) stopped before the end of its pruning window.");
        results.Add(Finish("b", $"enlarged model (FFN {largeFfn}) with IDEA Prune to FFN {smallFfn} in [{pruneStart}, {pruneEnd}) under one schedule{(kd ? ", KD from the snapshot at the pruning start" : "")}",
            model, [Curve.From(run.Training, 0)], run.Training.History, sw.Elapsed));
    }

    // ---- (c) enlarged model trained for the pre-pruning steps, one-shot pruned, retrained with a re-warm-up. ----
    if (arms.Contains('c'))
    {
        var sw = Stopwatch.StartNew();
        using var model = LlamaForCausalLM.CreateRandom(largeConfig, LargeSeed);
        TrainingResult phase1;
        using (var trainer = new CausalLMTrainer(model, Options(pruneStart, DataSeed), loggerFactory.CreateLogger("c-phase1")))
            phase1 = trainer.Train(trainSet, validSet, null, cts.Token);
        LlamaForCausalLM? teacher = kd ? Copy(model) : null;
        try
        {
            var scores = FfnSensitivity.Accumulate(model, trainSet, oneShotBatches, batchSize, null, cts.Token);
            var config = FfnSensitivity.PruneToWidth(model, scores, smallFfn);
            log.LogInformation("Arm (c): one-shot pruned to FFN {Ffn} after {Steps} steps ({Params:N0} parameters).", config.IntermediateSize, pruneStart, model.ParameterCount);
            TrainingLoss? loss = teacher is null ? null : DistillationLoss.Create(teacher, kdOptions);
            TrainingResult phase2;
            using (var trainer = new CausalLMTrainer(model, Options(steps - pruneStart, DataSeed + 1), loggerFactory.CreateLogger("c-phase2"), loss))
                phase2 = trainer.Train(trainSet, validSet, null, cts.Token);
            results.Add(Finish("c", $"enlarged model (FFN {largeFfn}) trained {pruneStart} steps (own schedule), one-shot pruned to FFN {smallFfn} (sensitivity over {oneShotBatches} batches), retrained {steps - pruneStart} steps with a re-warm-up{(kd ? ", KD from the enlarged model" : "")}",
                model, [Curve.From(phase1, 0), Curve.From(phase2, phase1.TokensSeen)], [.. phase1.History, .. phase2.History.Select(h => h with { Step = h.Step + pruneStart })], sw.Elapsed));
        }
        finally
        {
            teacher?.Dispose();
        }
    }
}
catch (OperationCanceledException)
{
    log.LogWarning("Interrupted.");
    return 2;
}

// ---- 4. Report and plot. ----
var report = new JsonObject
{
    ["description"] = "IDEA Prune experiment (samples/Pip.IdeaPrune): same training-token budget for (a) small from scratch, (b) enlarge + IDEA Prune under one schedule, (c) enlarge + one-shot prune + retrain with re-warm-up.",
    ["corpus"] = corpusDir,
    ["tokenizer"] = Path.GetFullPath(tokenizerDir),
    ["model"] = new JsonObject
    {
        ["layers"] = smallConfig.NumHiddenLayers, ["hidden_size"] = hidden, ["small_intermediate_size"] = smallFfn, ["large_intermediate_size"] = largeFfn,
        ["attention_heads"] = smallConfig.NumAttentionHeads, ["kv_heads"] = smallConfig.NumKeyValueHeads, ["vocab_size"] = smallConfig.VocabSize,
    },
    ["budget"] = new JsonObject
    {
        ["tokens"] = steps * tokensPerStep, ["steps"] = steps, ["batch_size"] = batchSize, ["sequence_length"] = seqLen,
        ["warmup_steps"] = warmup, ["learning_rate"] = lr, ["min_learning_rate_ratio"] = 0.1,
        ["epochs"] = Math.Round(steps * (double)tokensPerStep / trainSet.TargetTokenCount, 3),
        ["oneshot_scoring_tokens_not_counted"] = (long)oneShotBatches * batchSize * seqLen,
    },
    ["pruning"] = new JsonObject
    {
        ["start_step"] = pruneStart, ["end_step"] = pruneEnd, ["update_interval"] = pruning.UpdateInterval, ["ema_beta"] = pruning.EmaBeta,
        ["shape"] = pruning.Shape.ToString(), ["score"] = "L2 over gate row, up row, down column of |w * dL/dw|, EMA s <- beta*s + (1-beta)*new, first update s = new",
        ["oneshot_batches"] = oneShotBatches,
    },
    ["distillation"] = kd ? new JsonObject { ["alpha"] = kdOptions.Alpha, ["temperature"] = kdOptions.Temperature } : null,
    ["validation"] = $"final: first {finalSet.Count} held-out sequences ({finalSet.TargetTokenCount} tokens); curves: first {Options(steps, DataSeed).MaxValidationSequences} sequences",
    ["arms"] = new JsonArray(results.Select(r => (JsonNode)r.ToJson()).ToArray()),
};
Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
File.WriteAllText(outPath, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
Plotting.Write(plotPath, results, kd, pruneStart * tokensPerStep, pruneEnd * tokensPerStep);
foreach (var r in results)
    log.LogInformation("Arm ({Arm}): validation loss {Loss:F4}, perplexity {Ppl:F2}, {Params:N0} parameters, {Seconds:F0} s.", r.Arm, r.FinalLoss, Math.Exp(r.FinalLoss), r.Parameters, r.Elapsed.TotalSeconds);
log.LogInformation("Wrote {Json} and {Png} in {Seconds:F0} s.", outPath, plotPath, total.Elapsed.TotalSeconds);
return 0;

ArmResult Finish(string arm, string description, LlamaForCausalLM model, List<Curve> curves, IReadOnlyList<TrainStepRecord> history, TimeSpan elapsed)
{
    double loss = Evaluate(model, finalSet);
    if (cli.Has("save-models"))
    {
        // TorchCausalLM would dispose the module on Dispose: keep the wrapper undisposed (the caller owns the model).
        new TorchCausalLM(model, tokenizer, tokenizerDir).Save(Path.Combine(workDir, "arm-" + arm), ScalarType.Float32, overwrite: true);
    }
    return new ArmResult(arm, description, loss, model.ParameterCount, model.Config.IntermediateSize, curves, history, elapsed);
}

static double Evaluate(LlamaForCausalLM model, PackedSequences data)
{
    using var trainer = new CausalLMTrainer(model, new TrainingOptions { BatchSize = 16, MaxSteps = 2, WarmupSteps = 0 });
    return trainer.EvaluateLoss(data);
}

static LlamaForCausalLM Copy(LlamaForCausalLM model)
{
    var copy = new LlamaForCausalLM(model.Config, model.Dtype, model.Device);
    copy.LoadWeights(model.NamedWeights());
    DistillationLoss.Freeze(copy);
    return copy;
}

/// <summary>Takes a frozen copy of the model (the KD teacher) right after the step before pruning starts.</summary>
sealed class TeacherSnapshot(long afterStep, bool enabled) : ITrainingHook, IDisposable
{
    public LlamaForCausalLM? Teacher { get; private set; }

    public void OnStepCompleted(TrainingStepContext context)
    {
        if (!enabled || context.Step != afterStep) return;
        var copy = new LlamaForCausalLM(context.Model.Config, context.Model.Dtype, context.Model.Device);
        copy.LoadWeights(context.Model.NamedWeights());
        DistillationLoss.Freeze(copy);
        Teacher = copy;
    }

    public void Dispose() => Teacher?.Dispose();
}

sealed record Curve(List<(long Tokens, double Loss)> Points)
{
    public static Curve From(TrainingResult run, long tokenOffset) =>
        new(run.Validation.Select(v => (v.TokensSeen + tokenOffset, v.Loss)).ToList());
}

sealed record ArmResult(string Arm, string Description, double FinalLoss, long Parameters, int IntermediateSize, List<Curve> Curves, IReadOnlyList<TrainStepRecord> History, TimeSpan Elapsed)
{
    public JsonObject ToJson() => new()
    {
        ["arm"] = Arm,
        ["description"] = Description,
        ["validation_loss"] = Math.Round(FinalLoss, 4),
        ["validation_perplexity"] = Math.Round(Math.Exp(FinalLoss), 3),
        ["parameters"] = Parameters,
        ["intermediate_size"] = IntermediateSize,
        ["wall_seconds"] = Math.Round(Elapsed.TotalSeconds, 1),
        ["validation_curve"] = new JsonArray(Curves.SelectMany(c => c.Points).Select(p => (JsonNode)new JsonObject { ["tokens"] = p.Tokens, ["loss"] = Math.Round(p.Loss, 4) }).ToArray()),
        ["learning_rates_every_10_steps"] = new JsonArray(History.Where((_, i) => i % 10 == 0).Select(h => (JsonNode)Math.Round(h.LearningRate, 8)).ToArray()),
    };
}

static class Plotting
{
    public static void Write(string path, IReadOnlyList<ArmResult> results, bool kd, long pruneStartTokens, long pruneEndTokens)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var plot = new ScottPlot.Plot();
        var names = new Dictionary<string, string> { ["a"] = "(a) small from scratch", ["b"] = "(b) enlarge + IDEA Prune", ["c"] = "(c) enlarge + one-shot + re-warm-up" };
        foreach (var r in results)
        {
            // Train loss (mean of 10 steps) thin, validation loss thick; x in millions of training tokens.
            var points = r.Curves.SelectMany(c => c.Points).ToList();
            var valid = plot.Add.Scatter(points.Select(p => p.Tokens / 1e6).ToArray(), points.Select(p => p.Loss).ToArray());
            valid.LegendText = $"{names.GetValueOrDefault(r.Arm, r.Arm)}: validation (final PPL {Math.Exp(r.FinalLoss):F1})";
            valid.MarkerSize = 4;
            valid.LineWidth = 2f;
        }
        if (results.Any(r => r.Arm != "a"))
        {
            var start = plot.Add.VerticalLine(pruneStartTokens / 1e6);
            start.LinePattern = ScottPlot.LinePattern.Dashed;
            start.LegendText = "pruning window (b) / one-shot point (c)";
            var end = plot.Add.VerticalLine(pruneEndTokens / 1e6);
            end.LinePattern = ScottPlot.LinePattern.Dashed;
            end.Color = start.Color;
        }
        plot.Title("IDEA Prune vs training small and one-shot pruning" + (kd ? " (with KD)" : ""));
        plot.XLabel("training tokens (millions)");
        plot.YLabel("validation loss (nats/token)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 560);
    }
}
