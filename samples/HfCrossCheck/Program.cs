// Cross-checks Pip against Hugging Face transformers (run inside the hf-sandbox chroot).
//   export: Pip makes tiny random models + a byte-level BPE tokenizer, saves them with TorchCausalLM.Save, and
//           transformers loads them (check.py and compare.py): token ids, NLL and logits must agree.
//   import: transformers makes tiny random models + a tokenizer trained with `tokenizers` (make_hf_models.py),
//           save_pretrained writes them, and Pip loads them: token ids, NLL and logits must agree.
//   opt: as export, for OPTForCausalLM folders (pre/post-norm, project_in/out, untied, depth+FFN pruned).
//   pertimport: PIP's PertImport scores of Pip against the same quantity computed in PyTorch on the exported Llama.
// Usage: dotnet run --project samples/HfCrossCheck -c Release -- [all|export|import|pertimport|opt] [--work DIR] [--max-tokens N] [--sandbox DIR]
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch;
using Pip.Torch.Models;
using static TorchSharp.torch;

var mode = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "all";
string work = Option("--work") ?? "/tmp/pip-hf-crosscheck";
int maxTokens = int.Parse(Option("--max-tokens") ?? "96", CultureInfo.InvariantCulture);
string sandbox = Option("--sandbox") ?? "/work/shared/tools/hf-sandbox";
string scripts = AppContext.BaseDirectory;
const double NllTolerance = 1e-4;   // relative
const double LogitTolerance = 1e-4; // absolute, logits are O(1..10)

const string Text =
    "The quick brown fox jumps over the lazy dog. Pruning removes whole decoder layers from a language model; " +
    "a layer whose gradient barely changes when the meaning of the input changes is a good candidate. " +
    "Numbers like 3.14159 and 2026, punctuation (brackets!), and a second line follow.\nDone: yes, really done.";

Directory.CreateDirectory(work);
string textFile = Path.Combine(work, "text.txt");
File.WriteAllText(textFile, Text);
bool ok = true;
if (mode is "all" or "export") ok &= Export();
if (mode is "all" or "import") ok &= Import();
if (mode is "all" or "pertimport") ok &= PertImport();
if (mode is "all" or "opt") ok &= ExportOpt();
Console.WriteLine(ok ? "ALL AGREE" : "MISMATCH");
return ok ? 0 : 1;

bool Export()
{
    Console.WriteLine("== export: Pip writes, transformers reads ==");
    // A byte-level BPE tokenizer with real merges, trained on the text itself.
    var staging = Path.Combine(work, "tokenizer");
    var bpe = new BpeTrainer(320, specialTokens: ["<s>", "</s>"]).Train([Text]);
    HfTokenizerWriter.WriteByteLevelBpe(staging, bpe, "<s>", "</s>", addBosToken: true);
    var tokenizer = HfTokenizer.Load(staging);

    var models = new (string Name, LlamaConfig Config, ScalarType Stored)[]
    {
        ("pip-llama-gqa-untied", TinyConfig(DecoderFamily.Llama, tied: false), ScalarType.Float32),
        ("pip-llama3-rope-gqa", TinyConfig(DecoderFamily.Llama, tied: false) with { RopeScaling = new RopeScaling("llama3", 8, 1, 4, 32) }, ScalarType.Float32),
        ("pip-qwen2-bias-tied", TinyConfig(DecoderFamily.Qwen2, tied: true) with { AttentionBias = true }, ScalarType.Float32),
        ("pip-llama-bf16", TinyConfig(DecoderFamily.Llama, tied: false), ScalarType.BFloat16),
    };
    bool ok = true;
    int seed = 1;
    foreach (var (name, config, stored) in models)
    {
        var dir = Path.Combine(work, name);
        using (var lm = new TorchCausalLM(Randomize(LlamaForCausalLM.CreateRandom(config, seed, std: 0.15), seed++), tokenizer, staging))
        {
            lm.Save(dir, dtype: stored, overwrite: true);
        }

        // Read back through Pip's own loader (in float32), as transformers will read it.
        using var loaded = TorchCausalLM.Load(dir, ScalarType.Float32);
        var ids = loaded.Tokenize(Text).Take(maxTokens).ToArray();
        double nll = loaded.ComputeLossAsync([ids]).AsTask().GetAwaiter().GetResult();
        WritePip(dir, ids, nll, Logits(loaded, ids));

        var check = RunSandbox(Path.Combine(sandbox, "check.py"), dir, textFile, "--max-tokens", maxTokens.ToString(CultureInfo.InvariantCulture), "--bos");
        var compare = RunSandbox(Path.Combine(scripts, "compare.py"), dir, textFile, "--max-tokens", maxTokens.ToString(CultureInfo.InvariantCulture));
        double hfNll = check["nll"]!.GetValue<double>();
        var firstIds = check["first_ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        bool idsOk = firstIds.SequenceEqual(ids.Take(firstIds.Length)) && check["tokens"]!.GetValue<int>() == ids.Length && compare["ids_equal"]!.GetValue<bool>();
        ok &= Report(name, check["transformers"]!.GetValue<string>(), ids.Length, idsOk, nll, hfNll, compare["max_abs_logit_diff"]!.GetValue<double>());
    }

    return ok;
}

bool Import()
{
    Console.WriteLine("== import: transformers writes, Pip reads ==");
    var root = Path.Combine(work, "hf");
    var made = RunSandbox(Path.Combine(scripts, "make_hf_models.py"), root, textFile, "--max-tokens", maxTokens.ToString(CultureInfo.InvariantCulture));
    bool ok = true;
    foreach (var entry in made["models"]!.AsArray())
    {
        var name = entry!["name"]!.GetValue<string>();
        var dir = Path.Combine(root, name);
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "hf.json")))!;
        var hfIds = expected["ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        using var lm = TorchCausalLM.Load(dir, ScalarType.Float32);
        var ids = lm.Tokenize(Text).Take(maxTokens).ToArray();
        bool idsOk = ids.SequenceEqual(hfIds);
        double nll = lm.ComputeLossAsync([hfIds]).AsTask().GetAwaiter().GetResult();
        var logits = Logits(lm, hfIds);
        var hfLogits = ReadFloats(Path.Combine(dir, "hf_logits.bin"));
        double maxDiff = logits.Zip(hfLogits, (a, b) => Math.Abs((double)a - b)).Max();
        if (logits.Length != hfLogits.Length) maxDiff = double.PositiveInfinity;
        ok &= Report($"{name} ({lm.Architecture}, {lm.Module.Dtype} from {lm.Config.TorchDtype})", expected["transformers"]!.GetValue<string>(),
            ids.Length, idsOk, nll, expected["nll"]!.GetValue<double>(), maxDiff);
    }

    return ok;
}

bool PertImport()
{
    Console.WriteLine("== PertImport: Pip (one layer-wise backward per pair) vs PyTorch (two full backward passes per pair) ==");
    var dir = Path.Combine(work, "pip-llama-gqa-untied");
    if (!Directory.Exists(dir)) throw new InvalidOperationException($"{dir} is missing: run the export step first.");
    string[][] pairs =
    [
        ["The cat sat on the mat near the door.", "The cat sat on the hat near the door."],
        ["A host of birds flew away later that day.", "A ghost of birds flew away alter that day."],
        ["We went home early because it rained.", "We went hme early because it rained."],
    ];
    var pairsFile = Path.Combine(work, "pairs.json");
    File.WriteAllText(pairsFile, JsonSerializer.Serialize(pairs));
    var reference = RunSandbox(Path.Combine(scripts, "pertimport_reference.py"), dir, pairsFile);

    using var lm = TorchCausalLM.Load(dir, ScalarType.Float32);
    var samples = pairs.Select((p, i) => new Pip.CalibrationSample(i, p[0])).ToArray();
    var twins = pairs.Select((p, i) => new Pip.PerturbedSample(samples[i], p[1], [])).ToArray();
    bool ok = true;
    foreach (var norm in new[] { HandNorm.L1, HandNorm.L2, HandNorm.LInf })
    {
        var metric = new Pip.Torch.Pruning.PerturbationImportanceMetric(norm);
        var scores = metric.ScoreAsync(new Pip.ImportanceRequest(lm, samples, [twins], 0, 0)).AsTask().GetAwaiter().GetResult().Scores;
        var expected = reference[norm.Name]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        double worst = scores.Select((s, l) => Math.Abs(s - expected[l]) / expected[l]).Max();
        bool good = worst <= NllTolerance;
        ok &= good;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(good ? "OK  " : "FAIL")} {norm.Name}: pip [{string.Join(", ", scores.Select(s => s.ToString("E6", CultureInfo.InvariantCulture)))}] torch [{string.Join(", ", expected.Select(s => s.ToString("E6", CultureInfo.InvariantCulture)))}] worst rel {worst:E2}"));
    }

    return ok;
}

bool ExportOpt()
{
    Console.WriteLine("== OPT export: Pip writes OPTForCausalLM folders (also after pruning), transformers reads ==");
    var staging = Path.Combine(work, "tokenizer");
    var bpe = new BpeTrainer(320, specialTokens: ["<s>", "</s>"]).Train([Text]);
    HfTokenizerWriter.WriteByteLevelBpe(staging, bpe, "<s>", "</s>", addBosToken: true);
    var tokenizer = HfTokenizer.Load(staging);
    var baseConfig = new OptConfig
    {
        VocabSize = 320, HiddenSize = 64, FfnDim = 128, NumHiddenLayers = 3, NumAttentionHeads = 8, HeadDim = 8,
        WordEmbedProjDim = 64, MaxPositionEmbeddings = 256, BosTokenId = 0, EosTokenIds = [1], PadTokenId = null,
    };
    var models = new (string Name, OptConfig Config, Action<TorchCausalLM>? Prune)[]
    {
        ("pip-opt-prenorm-tied", baseConfig, null),
        ("pip-opt-350m-shape", baseConfig with { DoLayerNormBefore = false, WordEmbedProjDim = 32 }, null),
        ("pip-opt-untied-projected", baseConfig with { TieWordEmbeddings = false, WordEmbedProjDim = 48 }, null),
        ("pip-opt-depth-and-ffn-pruned", baseConfig with { NumHiddenLayers = 4 }, lm =>
        {
            lm.RemoveLayers([2]);
            var opt = (OptForCausalLM)lm.Model;
            for (var l = 0; l < opt.Layers.Count; l++) Pip.Torch.Pruning.Width.WidthPruner.PruneChannels(opt, l, Enumerable.Range(5 * l, 40).ToArray());
        }),
    };
    bool ok = true;
    int seed = 11;
    foreach (var (name, config, prune) in models)
    {
        var dir = Path.Combine(work, name);
        var model = OptForCausalLM.CreateRandom(config, seed, std: 0.15);
        using (var generator = new TorchSharp.torch.Generator((ulong)seed++ + 1000))
        using (no_grad())
        {
            foreach (var (parameterName, p) in model.named_parameters())
            {
                using var scope = NewDisposeScope();
                if (parameterName.EndsWith("norm.weight", StringComparison.Ordinal) || parameterName.EndsWith(".bias", StringComparison.Ordinal))
                    p.add_(randn(p.shape, generator: generator) * 0.2);
            }
        }
        using (var lm = new TorchCausalLM(model, tokenizer, staging))
        {
            prune?.Invoke(lm);
            lm.Save(dir, overwrite: true);
        }
        using var loaded = TorchCausalLM.Load(dir, ScalarType.Float32);
        var ids = loaded.Tokenize(Text).Take(maxTokens).ToArray();
        double nll = loaded.ComputeLossAsync([ids]).AsTask().GetAwaiter().GetResult();
        WritePip(dir, ids, nll, Logits(loaded, ids));
        var check = RunSandbox(Path.Combine(sandbox, "check.py"), dir, textFile, "--max-tokens", maxTokens.ToString(CultureInfo.InvariantCulture), "--bos");
        var compare = RunSandbox(Path.Combine(scripts, "compare.py"), dir, textFile, "--max-tokens", maxTokens.ToString(CultureInfo.InvariantCulture));
        var firstIds = check["first_ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        bool idsOk = firstIds.SequenceEqual(ids.Take(firstIds.Length)) && check["tokens"]!.GetValue<int>() == ids.Length && compare["ids_equal"]!.GetValue<bool>();
        ok &= Report($"{name} ({compare["architecture"]!.GetValue<string>()}, {loaded.LayerCount} layers)", check["transformers"]!.GetValue<string>(), ids.Length, idsOk, nll,
            check["nll"]!.GetValue<double>(), compare["max_abs_logit_diff"]!.GetValue<double>());
    }

    return ok;
}

bool Report(string name, string version, int tokens, bool idsOk, double pip, double hf, double maxLogitDiff)
{
    double rel = Math.Abs(pip - hf) / Math.Abs(hf);
    bool ok = idsOk && rel <= NllTolerance && maxLogitDiff <= LogitTolerance;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{(ok ? "OK  " : "FAIL")} {name}: transformers {version}, {tokens} tokens, ids {(idsOk ? "equal" : "DIFFER")}, NLL pip {pip:F7} hf {hf:F7} rel {rel:E2}, max |Δlogit| {maxLogitDiff:E2}"));
    return ok;
}

static LlamaConfig TinyConfig(DecoderFamily family, bool tied) => new()
{
    Family = family,
    VocabSize = 320,
    HiddenSize = 64,
    IntermediateSize = 112,
    NumHiddenLayers = 3,
    NumAttentionHeads = 8,
    NumKeyValueHeads = 2,
    HeadDim = 8,
    RmsNormEps = 1e-6,
    RopeTheta = 10000,
    MaxPositionEmbeddings = 256,
    TieWordEmbeddings = tied,
    BosTokenId = 0,
    EosTokenIds = [1],
};

// CreateRandom gives zero biases and all-ones norms; make them random too so that a wrong name or layout shows.
static LlamaForCausalLM Randomize(LlamaForCausalLM model, int seed)
{
    using var generator = new TorchSharp.torch.Generator((ulong)seed + 1000);
    using var noGrad = no_grad();
    foreach (var (name, p) in model.named_parameters())
    {
        using var scope = NewDisposeScope();
        if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.add_(randn(p.shape, generator: generator) * 0.2);
        else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.add_(randn(p.shape, generator: generator) * 0.2);
    }

    return model;
}

static float[] Logits(TorchCausalLM lm, IReadOnlyList<int> ids)
{
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count]);
    return lm.Model.Logits(input).to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
}

static void WritePip(string dir, int[] ids, double nll, float[] logits)
{
    File.WriteAllText(Path.Combine(dir, "..", Path.GetFileName(dir) + ".pip.json"), JsonSerializer.Serialize(new { ids, nll }));
    var bytes = new byte[logits.Length * 4];
    Buffer.BlockCopy(logits, 0, bytes, 0, bytes.Length);
    File.WriteAllBytes(Path.Combine(dir, "..", Path.GetFileName(dir) + ".pip_logits.bin"), bytes);
}

static float[] ReadFloats(string file)
{
    var bytes = File.ReadAllBytes(file);
    var result = new float[bytes.Length / 4];
    Buffer.BlockCopy(bytes, 0, result, 0, bytes.Length);
    return result;
}

JsonNode RunSandbox(string script, params string[] arguments)
{
    var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
    start.ArgumentList.Add(Path.Combine(sandbox, "run.sh"));
    start.ArgumentList.Add(script);
    foreach (var a in arguments) start.ArgumentList.Add(a);
    using var process = Process.Start(start)!;
    var stderr = process.StandardError.ReadToEndAsync();
    var stdout = process.StandardOutput.ReadToEnd();
    process.WaitForExit();
    var line = stdout.Split('\n').LastOrDefault(l => l.StartsWith('{'));
    if (process.ExitCode != 0 || line is null)
        throw new InvalidOperationException($"{Path.GetFileName(script)} failed (exit {process.ExitCode}):\n{stdout}\n{stderr.Result}");
    return JsonNode.Parse(line)!;
}

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>L1/L2/L∞ by hand, for this tool only.</summary>
sealed class HandNorm(string name, double order) : Pip.INormAggregator
{
    public static readonly HandNorm L1 = new("L1", 1), L2 = new("L2", 2), LInf = new("Linf", double.PositiveInfinity);

    public string Name => name;

    public double Order => order;

    public double Combine(ReadOnlySpan<double> partNorms)
    {
        double r = 0;
        foreach (var n in partNorms) r = order switch { 1 => r + n, 2 => r + n * n, _ => Math.Max(r, n) };
        return order == 2 ? Math.Sqrt(r) : r;
    }

    public double Compute(ReadOnlySpan<float> values)
    {
        var parts = new double[values.Length];
        for (int i = 0; i < parts.Length; i++) parts[i] = Math.Abs(values[i]);
        return Combine(parts);
    }
}
