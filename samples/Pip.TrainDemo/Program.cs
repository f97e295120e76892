// Pip.TrainDemo: trains Pip's demo model (a small Llama-architecture decoder) from scratch on the MIT corpus in
// shared/data/corpus: a byte-level BPE tokenizer, then the model, with warm-up + cosine AdamW, clipping, validation,
// resumable checkpoints, and a bf16 Hugging Face folder at the end.
//
//   dotnet run -c Release --project samples/Pip.TrainDemo -- [--budget-minutes 40] [--resume] [--corpus DIR]
//       [--work DIR] [--out DIR] [--plot FILE] [--measure-only]
//   dotnet run -c Release --project samples/Pip.TrainDemo -- --evaluate [MODEL_DIR]   (re-score the finished model)
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch;
using Pip.Torch.Models;
using Pip.Torch.Training;
using Pip.Training;
using static TorchSharp.torch;

var cli = Cli.Parse(args);
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }));
var log = loggerFactory.CreateLogger("TrainDemo");
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };

var repo = Cli.FindRepoRoot();
var corpusDir = cli.Get("corpus") ?? Cli.FindUp(repo, Path.Combine("shared", "data", "corpus"));
var workDir = Path.GetFullPath(cli.Get("work") ?? Path.Combine(repo, "artifacts", "train-demo"));
var outDir = Path.GetFullPath(cli.Get("out") ?? Path.Combine(repo, "models", "pip-demo"));
var plotPath = Path.GetFullPath(cli.Get("plot") ?? Path.Combine(repo, "docs", "demo-model-loss.png"));
bool resume = cli.Has("resume");
double budgetMinutes = double.Parse(cli.Get("budget-minutes") ?? "40", System.Globalization.CultureInfo.InvariantCulture);
Directory.CreateDirectory(workDir);
var total = Stopwatch.StartNew();

// ---- 1. Corpus and deterministic split: every 50th line (over both files, in file order) is held out. ----
var (trainLines, validLines) = DemoCorpus.Split(corpusDir);
log.LogInformation("Corpus {Dir}: {Train} training lines, {Valid} held-out lines (every {N}th).", corpusDir, trainLines.Count, validLines.Count, DemoCorpus.HoldOutEvery);

// --evaluate [DIR]: re-score a finished model (default: the --out folder, i.e. models/pip-demo) exactly as the final
// evaluation below does (fp32 compute, the first --final-eval-seqs held-out sequences, add-one unigram on the same
// targets) and stop: this reproduces the figures in training.json and the README. Uses the model's own tokenizer.
if (cli.Has("evaluate"))
{
    var evalDir = Path.GetFullPath(cli.Get("evaluate") ?? outDir);
    using var lm = TorchCausalLM.Load(evalDir, ScalarType.Float32);
    var tok = lm.Tokenizer ?? throw new InvalidOperationException($"'{evalDir}' has no tokenizer.json.");
    int eos = tok.EosTokenId ?? throw new InvalidOperationException($"The tokenizer of '{evalDir}' has no EOS token.");
    int evalSeqLen = int.Parse(cli.Get("seq") ?? "256");
    int evalSeqs = int.Parse(cli.Get("final-eval-seqs") ?? "64");
    int[] heldOutTokens = Tokens.Encode(validLines, tok, eos, log);
    int[] trainingTokens = Tokens.Encode(trainLines, tok, eos, log);
    var evalSet = new PackedSequences(heldOutTokens.Take(evalSeqs * evalSeqLen + 1).ToArray(), evalSeqLen);
    double modelNll = Evaluate(lm.Module, evalSet);
    double unigram = UnigramNll(trainingTokens, evalSet, lm.Config.VocabSize);
    log.LogInformation("{Dir}: held-out perplexity {Ppl:F2} on {Seqs} sequences of {Len} tokens; add-one unigram {Uni:F2} ({Ratio:F2}x higher).",
        evalDir, Math.Exp(modelNll), evalSet.Count, evalSeqLen, Math.Exp(unigram), Math.Exp(unigram - modelNll));
    return 0;
}

// ---- 2. Tokenizer (cached in the work folder). ----
const int VocabSize = 4096;
const string Bos = "<|bos|>", Eos = "<|eos|>";
var tokenizerDir = Path.Combine(workDir, "tokenizer");
if (!File.Exists(Path.Combine(tokenizerDir, "tokenizer.json")))
{
    var sw = Stopwatch.StartNew();
    var bpe = new BpeTrainer(VocabSize, minFrequency: 2, specialTokens: [Bos, Eos]).Train(trainLines);
    HfTokenizerWriter.WriteByteLevelBpe(tokenizerDir, bpe, Bos, Eos, addBosToken: true);
    log.LogInformation("Trained a {Vocab}-token byte-level BPE tokenizer in {S:F0} s.", bpe.Tokens.Count, sw.Elapsed.TotalSeconds);
}
var tokenizer = HfTokenizer.Load(tokenizerDir);
int bosId = tokenizer.BosTokenId ?? throw new InvalidOperationException("no BOS");
int eosId = tokenizer.EosTokenId ?? throw new InvalidOperationException("no EOS");

// ---- 3. Token streams (cached): each line is <|bos|> text <|eos|>. ----
int[] trainTokens = Tokens.LoadOrEncode(Path.Combine(workDir, "train.tokens"), trainLines, tokenizer, eosId, log);
int[] validTokens = Tokens.LoadOrEncode(Path.Combine(workDir, "valid.tokens"), validLines, tokenizer, eosId, log);
log.LogInformation("Tokens: {Train} training, {Valid} held-out ({Cpt:F2} characters per token).", trainTokens.Length, validTokens.Length,
    trainLines.Sum(l => (double)l.Length + 1) / trainTokens.Length);

// ---- 4. Model. ----
int seqLen = int.Parse(cli.Get("seq") ?? "256");
var config = new LlamaConfig
{
    Family = DecoderFamily.Llama,
    VocabSize = tokenizer.VocabSize,
    HiddenSize = int.Parse(cli.Get("hidden") ?? "128"),
    IntermediateSize = int.Parse(cli.Get("ffn") ?? "352"),
    NumHiddenLayers = int.Parse(cli.Get("layers") ?? "12"),
    NumAttentionHeads = 8,
    NumKeyValueHeads = 4,
    HeadDim = int.Parse(cli.Get("hidden") ?? "128") / 8,
    RmsNormEps = 1e-5,
    RopeTheta = 10000,
    MaxPositionEmbeddings = 1024,
    TieWordEmbeddings = true,
    BosTokenId = bosId,
    EosTokenIds = [eosId],
    TorchDtype = "float32",
};
var trainSet = new PackedSequences(trainTokens, seqLen);
var validSet = new PackedSequences(validTokens, seqLen);
int batchSize = int.Parse(cli.Get("batch") ?? "4");
const long ModelSeed = 20260507;

// ---- 5. Plan: measure throughput, then choose the cosine schedule's length from the time budget (kept on resume). ----
var planPath = Path.Combine(workDir, "plan.json");
Plan plan;
if (resume && File.Exists(planPath))
{
    plan = JsonSerializer.Deserialize<Plan>(File.ReadAllText(planPath))!;
    log.LogInformation("Resuming with the saved plan: {Steps} steps of {Batch}×{Seq} tokens (measured {Tps:F0} tokens/s).", plan.MaxSteps, plan.BatchSize, plan.SequenceLength, plan.MeasuredTokensPerSecond);
}
else
{
    // --tps skips the probe (use it when the machine is shared and a short probe would mislead).
    double tps = cli.Get("tps") is { } given ? double.Parse(given, System.Globalization.CultureInfo.InvariantCulture) : Measure(config, trainSet, batchSize, log);
    long tokensPerStep = (long)batchSize * seqLen;
    int steps = (int)Math.Max(50, budgetMinutes * 60 * tps * 0.9 / tokensPerStep); // ~10% for evaluations and checkpoints
    plan = new Plan(steps, Math.Max(10, steps / 20), batchSize, seqLen, tps, budgetMinutes);
    File.WriteAllText(planPath, JsonSerializer.Serialize(plan));
    log.LogInformation("Planning with {Tps:F0} tokens/s: {Steps} steps ({Tokens:N0} tokens, {Epochs:F2} epochs) fit in {Budget} minutes.",
        tps, steps, steps * tokensPerStep, steps * (double)tokensPerStep / trainSet.TargetTokenCount, budgetMinutes);
    var oldCheckpoint = Path.Combine(workDir, "checkpoint");
    if (Directory.Exists(oldCheckpoint)) Directory.Delete(oldCheckpoint, true);
}
if (cli.Has("measure-only")) return 0;

var options = new TrainingOptions
{
    LearningRate = 2e-3,
    MinLearningRateRatio = 0.1,
    WarmupSteps = plan.WarmupSteps,
    MaxSteps = plan.MaxSteps,
    BatchSize = plan.BatchSize,
    GradientAccumulationSteps = 1,
    WeightDecay = 0.1,
    Beta1 = 0.9,
    Beta2 = 0.95,
    MaxGradientNorm = 1.0,
    EvaluateEvery = Math.Max(10, plan.MaxSteps / 15),
    MaxValidationSequences = 8,
    CheckpointFolder = Path.Combine(workDir, "checkpoint"),
    CheckpointInterval = TimeSpan.FromMinutes(4),
    EarlyStoppingPatience = 5,
    EarlyStoppingMinDelta = 0.005,
    Seed = 7,
    MaxDuration = cli.Get("max-minutes") is { } maxMinutes ? TimeSpan.FromMinutes(double.Parse(maxMinutes, System.Globalization.CultureInfo.InvariantCulture)) : null,
    LogEvery = 10,
};

using var model = LlamaForCausalLM.CreateRandom(config, ModelSeed);
log.LogInformation("Model: {Layers} layers, hidden {Hidden}, {Heads} heads / {Kv} KV heads, FFN {Ffn}, vocab {Vocab}, tied embeddings: {Params:N0} parameters.",
    config.NumHiddenLayers, config.HiddenSize, config.NumAttentionHeads, config.NumKeyValueHeads, config.IntermediateSize, config.VocabSize, model.ParameterCount);
using var trainer = new CausalLMTrainer(model, options, loggerFactory.CreateLogger<CausalLMTrainer>());
if (resume && !trainer.TryResume()) log.LogInformation("No checkpoint to resume from: starting afresh.");

TrainingResult result;
try
{
    result = trainer.Train(trainSet, validSet, null, cts.Token);
}
catch (OperationCanceledException)
{
    log.LogWarning("Interrupted at step {Step}; the checkpoint is in {Folder}. Run again with --resume.", trainer.Step, options.CheckpointFolder);
    return 2;
}

// ---- 6. Final evaluation on the whole held-out split, the unigram baseline, the bf16 folder, plot and report. ----
// The shipped (bf16) model and the unigram baseline are scored on the same held-out sequences (the first
// --final-eval-seqs of the held-out split; all with 0); the fp32 figure is the last training-time one (first 8 sequences).
int finalSeqs = int.Parse(cli.Get("final-eval-seqs") ?? "64");
var finalSet = finalSeqs > 0 && finalSeqs < validSet.Count ? new PackedSequences(validTokens.Take(finalSeqs * seqLen + 1).ToArray(), seqLen) : validSet;
double fp32ValidLoss = result.FinalValidationLoss ?? double.NaN;
// TorchCausalLM owns (and would dispose) the module: keep the wrapper alive instead of disposing it here.
var wrapped = new TorchCausalLM(model, tokenizer, tokenizerDir);
wrapped.Save(outDir, ScalarType.BFloat16, overwrite: true, cts.Token);
using var saved = TorchCausalLM.Load(outDir, ScalarType.Float32);
double bf16ValidLoss = Evaluate(saved.Module, finalSet);
double unigramNll = UnigramNll(trainTokens, finalSet, config.VocabSize);

string[] prompts = ["The history of the city", "In the morning, the children"];
var continuations = new List<JsonObject>();
foreach (var prompt in prompts)
{
    var ids = tokenizer.Encode(prompt);
    var generated = saved.Module.Generate(ids, 40, eosId);
    var text = tokenizer.Decode(generated);
    continuations.Add(new JsonObject { ["prompt"] = prompt, ["continuation"] = text });
    log.LogInformation("Greedy: {Prompt} ⟶ {Text}", prompt, text);
}

Plotting.Write(plotPath, result);
var trainingSeconds = result.Elapsed.TotalSeconds;
var report = new JsonObject
{
    ["description"] = "Pip demo model: a Llama-architecture decoder trained from scratch on shared/data/corpus (brown.txt, nlp-corpus.txt; MIT) by samples/Pip.TrainDemo.",
    ["model"] = new JsonObject
    {
        ["layers"] = config.NumHiddenLayers, ["hidden_size"] = config.HiddenSize, ["intermediate_size"] = config.IntermediateSize,
        ["attention_heads"] = config.NumAttentionHeads, ["kv_heads"] = config.NumKeyValueHeads, ["vocab_size"] = config.VocabSize,
        ["tied_embeddings"] = true, ["parameters"] = model.ParameterCount, ["stored_dtype"] = "bfloat16",
    },
    ["data"] = new JsonObject
    {
        ["corpus_files"] = new JsonArray(DemoCorpus.Files.Select(f => (JsonNode)f).ToArray()),
        ["split"] = $"line i (0-based over non-empty lines of both files in order) is held out when i % {DemoCorpus.HoldOutEvery} == {DemoCorpus.HoldOutEvery - 1}",
        ["train_lines"] = trainLines.Count, ["validation_lines"] = validLines.Count,
        ["train_tokens"] = trainTokens.Length, ["validation_tokens"] = validTokens.Length,
        ["validation_scored_tokens"] = finalSet.TargetTokenCount,
        ["validation_scored_note"] = "final model and unigram scored on the first sequences of the held-out split (tokens listed); training-time evaluations used the first 8 sequences",
        ["tokenizer"] = $"byte-level BPE, {tokenizer.VocabSize} tokens, trained on the training split; specials {Bos} {Eos}; BOS added by default; each line is {Bos} text {Eos}",
    },
    ["training"] = new JsonObject
    {
        ["optimizer"] = "AdamW (no weight decay on norms/embeddings)",
        ["learning_rate"] = options.LearningRate, ["min_learning_rate_ratio"] = options.MinLearningRateRatio,
        ["warmup_steps"] = options.WarmupSteps, ["max_steps"] = options.MaxSteps, ["steps_done"] = result.Steps,
        ["batch_size"] = options.BatchSize, ["sequence_length"] = seqLen, ["weight_decay"] = options.WeightDecay,
        ["betas"] = new JsonArray(options.Beta1, options.Beta2), ["max_grad_norm"] = options.MaxGradientNorm,
        ["precision"] = "float32 training, bfloat16 stored",
        ["stop_rule"] = $"time limit {options.MaxDuration?.TotalMinutes.ToString() ?? "none"} minutes (machine shared with other jobs); cosine schedule length chosen from a {plan.BudgetMinutes}-minute budget at the planning throughput (measured by a probe, or given with --tps); early stop if the best validation loss of the last {options.EarlyStoppingPatience} evaluations improves by less than {options.EarlyStoppingMinDelta} nats",
        ["stop_reason"] = result.StopReason.ToString(),
        ["tokens_seen"] = result.TokensSeen,
        ["epochs"] = result.TokensSeen / (double)trainSet.TargetTokenCount,
        ["wall_time_seconds"] = Math.Round(trainingSeconds, 1),
        ["tokens_per_second"] = Math.Round(result.TokensSeen / trainingSeconds, 1),
        ["planning_tokens_per_second"] = Math.Round(plan.MeasuredTokensPerSecond, 1),
        ["seed"] = options.Seed, ["init_seed"] = ModelSeed,
    },
    ["results"] = new JsonObject
    {
        ["validation_loss_fp32_subset"] = Math.Round(fp32ValidLoss, 4),
        ["validation_perplexity_fp32_subset"] = Math.Round(Math.Exp(fp32ValidLoss), 2),
        ["validation_loss"] = Math.Round(bf16ValidLoss, 4),
        ["validation_perplexity"] = Math.Round(Math.Exp(bf16ValidLoss), 2),
        ["unigram_validation_perplexity"] = Math.Round(Math.Exp(unigramNll), 2),
        ["unigram_note"] = "add-one smoothed unigram model estimated on the training tokens, scored on the same held-out targets with the same tokenizer",
        ["improvement_over_unigram"] = Math.Round(Math.Exp(unigramNll) / Math.Exp(bf16ValidLoss), 2),
        ["validation_curve"] = new JsonArray(result.Validation.Select(v => (JsonNode)new JsonObject { ["step"] = v.Step, ["loss"] = Math.Round(v.Loss, 4) }).ToArray()),
    },
    ["greedy_continuations"] = new JsonArray(continuations.Cast<JsonNode>().ToArray()),
};
File.WriteAllText(Path.Combine(outDir, "training.json"), report.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
log.LogInformation("Validation loss {Loss:F4} (PPL {Ppl:F2}; bf16 {Bf:F2}), unigram PPL {Uni:F2}. {Tokens:N0} tokens in {Time:F0} s. Total {Total:F0} s.",
    fp32ValidLoss, Math.Exp(fp32ValidLoss), Math.Exp(bf16ValidLoss), Math.Exp(unigramNll), result.TokensSeen, trainingSeconds, total.Elapsed.TotalSeconds);
return 0;

static double Measure(LlamaConfig config, PackedSequences train, int batchSize, ILogger log)
{
    using var probe = LlamaForCausalLM.CreateRandom(config, 1);
    var options = new TrainingOptions { MaxSteps = 6, WarmupSteps = 1, BatchSize = batchSize, EvaluateEvery = 0, LogEvery = 0, LearningRate = 1e-4 };
    using var trainer = new CausalLMTrainer(probe, options);
    var times = new List<double>();
    var sw = Stopwatch.StartNew();
    trainer.Train(train, null, new Progress(p => { times.Add(sw.Elapsed.TotalSeconds); }));
    // Synchronous progress: times[i] is the end of step i; skip the first (warm-up) step.
    double seconds = times[^1] - times[0];
    double tps = (times.Count - 1) * (double)batchSize * train.SequenceLength / seconds;
    log.LogInformation("Throughput probe: {Steps} steps, {Tps:F0} tokens/s.", times.Count - 1, tps);
    return tps;
}

static double Evaluate(LlamaForCausalLM model, PackedSequences data)
{
    using var trainer = new CausalLMTrainer(model, new TrainingOptions { BatchSize = 16, MaxSteps = 2, WarmupSteps = 0 });
    return trainer.EvaluateLoss(data);
}

static double UnigramNll(int[] train, PackedSequences valid, int vocab)
{
    var counts = new double[vocab];
    foreach (var t in train) counts[t]++;
    double denominator = train.Length + vocab;
    double nll = 0;
    long n = 0;
    for (int s = 0; s < valid.Count; s++)
    {
        var seq = valid[s];
        for (int t = 1; t < seq.Length; t++) { nll -= Math.Log((counts[seq[t]] + 1) / denominator); n++; }
    }
    return nll / n;
}

sealed record Plan(int MaxSteps, int WarmupSteps, int BatchSize, int SequenceLength, double MeasuredTokensPerSecond, double BudgetMinutes);

sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => report(value);
}


static class Plotting
{
    public static void Write(string path, TrainingResult result)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var plot = new ScottPlot.Plot();
        // Training loss: mean over windows of 10 steps, to show the trend.
        const int Window = 10;
        var xs = new List<double>();
        var ys = new List<double>();
        for (int i = 0; i + Window <= result.History.Count; i += Window)
        {
            xs.Add(result.History[i + Window - 1].Step);
            ys.Add(result.History.Skip(i).Take(Window).Average(h => h.TrainLoss));
        }
        var train = plot.Add.Scatter(xs.ToArray(), ys.ToArray());
        train.LegendText = "train (mean of 10 steps)";
        train.MarkerSize = 0;
        train.LineWidth = 1.5f;
        var valid = plot.Add.Scatter(result.Validation.Select(v => (double)v.Step).ToArray(), result.Validation.Select(v => v.Loss).ToArray());
        valid.LegendText = "validation (held-out lines)";
        valid.MarkerSize = 5;
        valid.LineWidth = 2f;
        plot.Title("Pip demo model: cross-entropy loss");
        plot.XLabel("optimizer step");
        plot.YLabel("loss (nats/token)");
        plot.ShowLegend();
        plot.SavePng(path, 900, 520);
    }
}
