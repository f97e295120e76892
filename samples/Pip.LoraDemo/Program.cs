// Pip.LoraDemo: LoRA recovery of a layer-pruned demo model. Loads models/pip-demo, measures perplexity on held-out
// lines, removes decoder layers, measures again, trains LoRA adapters on the training lines (LoraRecovery), merges
// them, and measures a third time.
//
//   dotnet run -c Release --project samples/Pip.LoraDemo -- --train ../../shared/data/corpus/brown.txt
//       [--heldout FILE] [--model models/pip-demo] [--remove 4,5,6,7] [--rank 8] [--alpha 16] [--steps 200] [--lr 1e-3]
//       [--seq 128] [--batch 8] [--max-lines 6000] [--eval-tokens 16384] [--minutes 2] [--out DIR]
//
// Without --heldout, every 50th non-empty line of --train is held out (the split Pip.TrainDemo used, so for the demo
// model on brown.txt the held-out lines were never trained on) and the adapters train on the others.
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Pip.Torch;
using Pip.Torch.Evaluation;
using Pip.Torch.Training;
using Pip.Torch.Training.Lora;
using static TorchSharp.torch;

var options = Args.Parse(args);
if (options.Get("train") is not { } trainPath)
{
    Console.Error.WriteLine("usage: Pip.LoraDemo --train FILE [--heldout FILE] [--model DIR] [--remove 4,5,6,7] [--rank 8] [--alpha 16] [--steps 200] [--lr 1e-3] [--seq 128] [--batch 8] [--max-lines 6000] [--eval-tokens 16384] [--minutes 2] [--out DIR]");
    return 2;
}

using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }));
var log = loggerFactory.CreateLogger("LoraDemo");
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };

var modelFolder = options.Get("model") ?? Args.FindUp(Path.Combine("models", "pip-demo"));
int[] remove = (options.Get("remove") ?? "4,5,6,7").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
int seq = options.Int("seq", 128);
int maxLines = options.Int("max-lines", 6000);
int evalTokens = options.Int("eval-tokens", 16384);
const int HoldOutEvery = 50;

// ---- 1. Text: training lines and held-out lines. ----
var lines = File.ReadLines(trainPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
List<string> trainLines, heldOut;
if (options.Get("heldout") is { } heldOutPath)
{
    trainLines = lines;
    heldOut = File.ReadLines(heldOutPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
}
else
{
    trainLines = lines.Where((_, i) => i % HoldOutEvery != HoldOutEvery - 1).ToList();
    heldOut = lines.Where((_, i) => i % HoldOutEvery == HoldOutEvery - 1).ToList();
}
if (trainLines.Count > maxLines) trainLines = trainLines.Take(maxLines).ToList();

// ---- 2. The model (float32: bf16 is slow on CPUs without AVX512-BF16) and the tokens. ----
var clock = Stopwatch.StartNew();
using var lm = TorchCausalLM.Load(modelFolder, ScalarType.Float32);
var tokenizer = lm.Tokenizer ?? throw new InvalidOperationException($"'{modelFolder}' has no tokenizer.json.");
int[] Encode(IEnumerable<string> text) => text.SelectMany(l => tokenizer.Encode(l).Append(tokenizer.EosTokenId ?? 1)).ToArray();
var trainTokens = Encode(trainLines);
var heldOutTokens = Encode(heldOut).Take(evalTokens).ToArray();
log.LogInformation("{Model}: {Layers} layers, {Params:N0} parameters. Training text: {Lines:N0} lines, {Tokens:N0} tokens; held out: {Eval:N0} tokens ({Seconds:F1} s).",
    modelFolder, lm.LayerCount, lm.ParameterCount, trainLines.Count, trainTokens.Length, heldOutTokens.Length, clock.Elapsed.TotalSeconds);

double Ppl() => Perplexity.Evaluate(lm.Module, heldOutTokens, seq, cancellationToken: cts.Token).Perplexity;

var dense = Ppl();
log.LogInformation("Dense perplexity: {Ppl:F2}.", dense);

// ---- 3. Pruning: remove whole layers. ----
lm.RemoveLayers(remove);
var pruned = Ppl();
log.LogInformation("Removed layers {Layers}: {Count} layers, {Params:N0} parameters; perplexity {Ppl:F2}.", string.Join(", ", remove), lm.LayerCount, lm.ParameterCount, pruned);

// ---- 4. LoRA recovery. ----
int steps = options.Int("steps", 200);
var lora = new LoraOptions
{
    Rank = options.Int("rank", LoraConstants.DefaultRank),
    Alpha = options.Double("alpha", LoraConstants.DefaultAlpha),
    Dropout = options.Double("dropout", LoraConstants.DefaultDropout),
};
lora.Training.MaxSteps = steps;
lora.Training.WarmupSteps = Math.Min(20, steps / 10);
lora.Training.LearningRate = options.Double("lr", 1e-3);
lora.Training.BatchSize = options.Int("batch", 8);
lora.Training.EvaluateEvery = Math.Max(1, steps / 2);
lora.Training.MaxValidationSequences = 16;
lora.Training.LogEvery = Math.Max(1, steps / 20);
lora.Training.MaxDuration = TimeSpan.FromMinutes(options.Double("minutes", 2));
var train = new PackedSequences(trainTokens, seq);
var valid = new PackedSequences(heldOutTokens, seq);
clock.Restart();
var result = await LoraRecovery.RunAsync(lm, train, valid, lora, logger: log, cancellationToken: cts.Token);
var recovered = Ppl();

Console.WriteLine();
Console.WriteLine($"Model            {modelFolder}");
Console.WriteLine($"Removed layers   {string.Join(", ", remove)} ({lm.LayerCount} left)");
Console.WriteLine($"LoRA             rank {lora.Rank}, alpha {lora.Alpha}, {result.AdaptedModules} modules, {result.TrainableParameters:N0} trainable parameters");
Console.WriteLine($"Training         {result.Training.Steps} steps ({result.Training.StopReason}), {result.Training.TokensSeen:N0} tokens, {clock.Elapsed.TotalSeconds:F0} s");
Console.WriteLine($"Perplexity       dense {dense:F2} | pruned {pruned:F2} | pruned + LoRA {recovered:F2}  ({heldOutTokens.Length:N0} held-out tokens, {seq}-token windows)");

if (options.Get("out") is { } outFolder)
{
    lm.Save(outFolder, ScalarType.BFloat16);
    Console.WriteLine($"Saved            {Path.GetFullPath(outFolder)} (bfloat16)");
}
return 0;

/// <summary>Minimal <c>--name value</c> parsing.</summary>
internal sealed class Args
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static Args Parse(string[] args)
    {
        var result = new Args();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"Unexpected argument '{args[i]}'.");
            result._values[args[i][2..]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "";
        }
        return result;
    }

    public string? Get(string name) => _values.GetValueOrDefault(name);

    public int Int(string name, int fallback) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Double(string name, double fallback) => Get(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

    /// <summary>A path relative to the current folder or one of its parents (the repository root when run from inside it).</summary>
    public static string FindUp(string relative)
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"'{relative}' was not found in the current folder or its parents; pass --model.");
    }
}
