// Timed benchmarks of Pip's heavy paths on a Llama-3.2-1B-shaped random model (no weights can be downloaded here).
// The model is first written to disk as a bf16 checkpoint (RandomCheckpoint, tensor by tensor; the free space is checked
// first), then loaded the way pip-prune loads one, so the peak memory reported is that of loading and of the benchmark,
// not of making the model (the high-water mark is reset after each phase); the checkpoint is deleted at the end.
//   dotnet run -c Release --project samples/Pip.Benchmarks -- load [--work DIR]   (load time and peak only)
//   dotnet run -c Release --project samples/Pip.Benchmarks -- matmul
//   dotnet run -c Release --project samples/Pip.Benchmarks -- perplexity [--tokens 4096] [--window 512]
//   dotnet run -c Release --project samples/Pip.Benchmarks -- pip-round [--pairs 8] [--length 128] [--recompute]
//   dotnet run -c Release --project samples/Pip.Benchmarks -- pip-round --stream --preset llama3-8b --layers 8 [--folder DIR] [--keep]
//       (writes a random bf16 checkpoint of that shape to DIR tensor by tensor, then runs one streamed PIP round on it)
//   dotnet run -c Release --project samples/Pip.Benchmarks -- probe [--layers 2] [--length 128]   (per-operation timings)
// Every mode takes --dtype float32|bfloat16 (default: bfloat16 where the CPU computes it fast, else float32).
using System.Diagnostics;
using Pip;
using Pip.Checkpoints;
using Pip.Torch;
using Pip.Torch.Checkpoints;
using Pip.Torch.Evaluation;
using Pip.Torch.Models;
using Pip.Torch.Pruning;
using Pip.Torch.Streaming;
using static TorchSharp.torch;

TorchEnvironment.UsePassiveOpenMPWait(); // before the first TorchSharp call
string mode = args.Length > 0 ? args[0] : "pip-round";
int Arg(string name, int fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
bool Flag(string name) => args.Contains(name);
string workRoot = Array.IndexOf(args, "--work") is int w and >= 0 && w + 1 < args.Length ? args[w + 1] : Path.GetTempPath();
string? checkpointFolder = null;

var config = new LlamaConfig
{
    Family = DecoderFamily.Llama, VocabSize = 128256, HiddenSize = 2048, IntermediateSize = 8192, NumHiddenLayers = 16,
    NumAttentionHeads = 32, NumKeyValueHeads = 8, HeadDim = 64, RmsNormEps = 1e-5, RopeTheta = 500000,
    RopeScaling = new RopeScaling("llama3", 32, 1, 4, 8192), MaxPositionEmbeddings = 131072, TieWordEmbeddings = true,
    TorchDtype = "bfloat16",
};

// --dtype float32|bfloat16; default: bfloat16 where this CPU computes it fast, else float32 (see TorchPrecision).
ScalarType dtype = Array.IndexOf(args, "--dtype") is int d and >= 0 && d + 1 < args.Length
    ? (args[d + 1].StartsWith("bf", StringComparison.OrdinalIgnoreCase) ? ScalarType.BFloat16 : ScalarType.Float32)
    : TorchPrecision.Resolve(null, ScalarType.BFloat16, null, config);
int elementBytes = dtype == ScalarType.Float32 ? 4 : 2;
Console.WriteLine($"threads: {get_num_threads()}, cores: {Environment.ProcessorCount}, dtype: {dtype}");
try
{
switch (mode)
{
    case "load":
        using (CreateModel()) { }
        break;
    case "matmul":
        Matmul();
        break;
    case "perplexity":
        PerplexityThroughput(Arg("--tokens", 4096), Arg("--window", 512));
        break;
    case "precision":
        foreach (int n in new[] { 64, 256, 512 })
        {
            foreach (var t in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                using var scope = NewDisposeScope();
                var a = ones(n, n).to_type(t);
                a.matmul(a);
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < 5; i++) a.matmul(a);
                Console.WriteLine($"{t} {n}x{n}: {sw.Elapsed.TotalMilliseconds / 5:F3} ms");
            }
        }
        var probeShape = PrecisionProbeShape.Of(config);
        var probeClock = Stopwatch.StartNew();
        bool bf16Fast = TorchPrecision.IsFast(ScalarType.BFloat16, null, probeShape);
        Console.WriteLine($"TorchPrecision.IsFast(BFloat16) at {probeShape}: {bf16Fast} (probe {probeClock.Elapsed.TotalMilliseconds:F0} ms); automatic type of this model: {TorchPrecision.Resolve(null, ScalarType.BFloat16, null, config)}");
        break;
    case "probe":
        Probe(Arg("--layers", 2), Arg("--length", 128));
        break;
    case "pip-round" when Flag("--stream"):
        StreamedPipRound(Arg("--pairs", 8), Arg("--length", 128), Arg("--layers", 8),
            Array.IndexOf(args, "--preset") is int p and >= 0 && p + 1 < args.Length ? args[p + 1] : "llama3-8b",
            Array.IndexOf(args, "--folder") is int f and >= 0 && f + 1 < args.Length ? args[f + 1] : null, Flag("--keep"));
        break;
    case "pip-round":
        PipRound(Arg("--pairs", 8), Arg("--length", 128), Flag("--recompute"));
        break;
    default:
        Console.Error.WriteLine($"unknown benchmark '{mode}': use load, matmul, precision, probe, perplexity or pip-round");
        return 2;
}
}
finally
{
    if (checkpointFolder is not null && Directory.Exists(checkpointFolder))
    {
        Directory.Delete(checkpointFolder, recursive: true);
        Console.WriteLine($"deleted {checkpointFolder}");
    }
}

return 0;

static void Matmul()
{
    // Peak matrix-product rate per type. A type the CPU has no fast kernels for (bf16 without AVX512-BF16/AMX) is
    // measured on a smaller product: at 2048×2048×8192 it would take minutes.
    foreach (var type in new[] { ScalarType.Float32, ScalarType.BFloat16 })
    {
        bool fast = Pip.Torch.TorchPrecision.IsFast(type);
        long m = fast ? 2048 : 512, k = fast ? 2048 : 512, n = fast ? 8192 : 512;
        int reps = fast ? 10 : 3;
        using var scope = NewDisposeScope();
        var a = randn(m, k).to_type(type);
        var b = randn(k, n).to_type(type);
        a.matmul(b).Dispose();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) a.matmul(b).Dispose();
        double flops = 2.0 * m * k * n * reps;
        Console.WriteLine($"matmul {type} {m}x{k}x{n}: {flops / sw.Elapsed.TotalSeconds / 1e9:F1} GFLOP/s (fast kernels: {fast})");
    }
}

// Writes the model to disk (bf16, tensor by tensor), resets the high-water mark, loads it as pip-prune does and
// resets the mark again, so the peaks printed later are the benchmark's own.
LlamaForCausalLM CreateModel()
{
    long parameters = (long)config.VocabSize * config.HiddenSize
        + config.NumHiddenLayers * (2L * config.HiddenSize * config.HiddenSize + 2L * config.HiddenSize * config.NumKeyValueHeads * config.HeadDim
            + 3L * config.HiddenSize * config.IntermediateSize + 2L * config.HiddenSize) + config.HiddenSize;
    long needed = parameters * 2 + (64L << 20);
    Directory.CreateDirectory(workRoot);
    long free = new DriveInfo(Path.GetFullPath(workRoot)).AvailableFreeSpace;
    if (free < needed)
        throw new IOException($"The benchmark writes a {needed / 1e9:F2} GB checkpoint to '{workRoot}', which has only {free / 1e9:F2} GB free; pass --work DIR on a disk with room.");
    Console.WriteLine($"writing a {needed / 1e9:F2} GB bf16 checkpoint to {workRoot} ({free / 1e9:F1} GB free)");
    checkpointFolder = Path.Combine(workRoot, $"pip-benchmark-{Guid.NewGuid():N}");
    var sw = Stopwatch.StartNew();
    RandomCheckpoint.Write(checkpointFolder, config, seed: 1, ScalarType.BFloat16);
    Console.WriteLine($"checkpoint written in {sw.Elapsed.TotalSeconds:F1} s; peak RSS while writing {Rss("VmHWM") / 1e9:F2} GB");

    long checkpointBytes = Directory.GetFiles(checkpointFolder, "*.safetensors").Sum(f => new FileInfo(f).Length);
    bool reset = ResetPeak();
    double before = Rss("VmRSS");
    sw.Restart();
    var loaded = TorchCausalLM.Load(checkpointFolder, dtype);
    var model = loaded.Module;
    var counts = model.CountParameters();
    double weights = counts.Total * (double)elementBytes;
    double peak = Rss("VmHWM");
    Console.WriteLine($"model: {counts.Total / 1e9:F3} B parameters, {dtype} weights {weights / 1e9:F2} GB, loaded in {sw.Elapsed.TotalSeconds:F1} s");
    Console.WriteLine(reset
        ? $"load: peak RSS {peak / 1e9:F2} GB (before loading {before / 1e9:F2} GB) = {peak / checkpointBytes:F2} x the {checkpointBytes / 1e9:F2} GB checkpoint = {peak / weights:F2} x the weights in memory"
        : "load: the peak could not be reset (/proc/self/clear_refs); peaks below include writing the checkpoint");
    ResetPeak();
    return model;
}

// Resets VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs).
static bool ResetPeak()
{
    try
    {
        File.WriteAllText("/proc/self/clear_refs", "5");
        return true;
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        return false;
    }
}

void PerplexityThroughput(int tokens, int window)
{
    using var model = CreateModel();
    var rng = new Random(7);
    var ids = Enumerable.Range(0, tokens).Select(_ => rng.Next(config.VocabSize)).ToArray();
    Perplexity.Evaluate(model, ids.Take(window).ToArray(), window); // warm-up
    var sw = Stopwatch.StartNew();
    var result = Perplexity.Evaluate(model, ids, window);
    double seconds = sw.Elapsed.TotalSeconds;
    Console.WriteLine($"perplexity: {result.TokenCount} tokens scored in {result.Windows} windows of {window}, {seconds:F1} s, {result.TokenCount / seconds:F1} tokens/s ({dtype})");
    Console.WriteLine($"peak RSS {Rss("VmHWM") / 1e9:F2} GB");
}

void PipRound(int pairs, int length, bool recompute)
{
    using var model = CreateModel();
    double weightsBytes = model.CountParameters().Total * (double)elementBytes;
    var rng = new Random(11);
    var groups = new List<IReadOnlyList<IReadOnlyList<int>>>();
    for (int i = 0; i < pairs; i++)
    {
        var x = Enumerable.Range(0, length).Select(_ => rng.Next(config.VocabSize)).ToArray();
        var twin = (int[])x.Clone();
        for (int k = 0; k < 3; k++) twin[rng.Next(1, length)] = rng.Next(config.VocabSize); // a few edited tokens
        groups.Add([x, twin]);
    }

    var combinations = groups.Select(g => LossCombination.Difference(g[0], g[1])).ToArray();
    var norm = Norms.L2;
    var engine = LayerEngine.InMemory(model);
    GradientNorms.MeanNormPerParameter(engine, combinations.Take(1).ToArray(), norm, recompute, new LayerScoringProgress("pip", null, 1), CancellationToken.None); // warm-up
    var sw = Stopwatch.StartNew();
    var scores = GradientNorms.MeanNormPerParameter(engine, combinations, norm, recompute, new LayerScoringProgress("pip", null, 1), CancellationToken.None);
    double seconds = sw.Elapsed.TotalSeconds;

    // Useful work: forward + backward (input and weight gradients) of every layer and of the head, for 2 × pairs sequences.
    var counts = model.CountParameters();
    double layerParams = counts.Layers.Sum();
    double headParams = (double)config.HiddenSize * config.VocabSize;
    double tokens = 2.0 * pairs * length;
    double flops = tokens * (3 * 2 * layerParams + 2 * 2 * headParams) + (recompute ? tokens * 2 * layerParams : 0);
    Console.WriteLine($"pip-round: {pairs} pairs x {length} tokens, recompute={recompute}: {seconds:F1} s, {flops / seconds / 1e9:F0} GFLOP/s ({flops / 1e12:F2} TFLOP)");
    Console.WriteLine($"peak RSS {Rss("VmHWM") / 1e9:F2} GB = {Rss("VmHWM") / weightsBytes:F2} x weights");
    Console.WriteLine("lowest-scoring layers: " + string.Join(", ", scores.Select((s, i) => (s, i)).OrderBy(p => p.s).Take(4).Select(p => $"{p.i} ({p.s:E2})")));
}

void Probe(int layers, int length)
{
    using var model = LlamaForCausalLM.CreateRandom(config with { NumHiddenLayers = layers }, seed: 1, dtype: dtype);
    var rng = new Random(3);
    IReadOnlyList<int> x = Enumerable.Range(0, length).Select(_ => rng.Next(config.VocabSize)).ToArray();
    using var batch = PaddedBatch.Create([x, x], model.Device);
    void Time(string what, Action action)
    {
        action();
        var sw = Stopwatch.StartNew();
        action();
        Console.WriteLine($"{what}: {sw.Elapsed.TotalMilliseconds:F0} ms");
    }

    Time("forward no_grad", () => { using var s = NewDisposeScope(); using var g = no_grad(); model.Logits(batch.Ids); });
    Time("forward+loss no_grad", () => { using var s = NewDisposeScope(); using var g = no_grad(); batch.SequenceLosses(model.Logits(batch.Ids)); });
    Time("layer forward no_grad", () => { using var s = NewDisposeScope(); using var g = no_grad(); using var rope = model.ComputeRotary(length, 2); model.Layers[0].call(model.Embed(batch.Ids), rope); });
    Time("layer fwd+bwd", () =>
    {
        using var s = NewDisposeScope();
        using var rope = model.ComputeRotary(length, 2);
        var h = model.Embed(batch.Ids).detach().requires_grad_(true);
        var o = model.Layers[0].call(h, rope);
        autograd.grad([o.sum()], [h, .. model.Layers[0].parameters()]);
    });
    Time("mlp fwd+bwd", () =>
    {
        using var s = NewDisposeScope();
        var h = model.Embed(batch.Ids).detach().requires_grad_(true);
        var o = model.Layers[0].Mlp.call(h);
        autograd.grad([o.sum()], [h, .. model.Layers[0].Mlp.parameters()]);
    });
    Time("head fwd+bwd", () =>
    {
        using var s = NewDisposeScope();
        var h = model.Embed(batch.Ids).detach().requires_grad_(true);
        var l = batch.SequenceLosses(model.LmHead(model.FinalNorm(h)));
        autograd.grad([(l[0] - l[1])], [h]);
    });
    Time("whole layerwise run", () => LayerwiseBackward.Run(model, batch.Ids, logits => { var l = batch.SequenceLosses(logits); return l[0] - l[1]; }, (_, _, _) => { }, CancellationToken.None));
}

void StreamedPipRound(int pairs, int length, int layers, string preset, string? folder, bool keep)
{
    var shape = preset switch
    {
        "llama3-8b" => new LlamaConfig
        {
            Family = DecoderFamily.Llama, VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumHiddenLayers = layers,
            NumAttentionHeads = 32, NumKeyValueHeads = 8, HeadDim = 128, RmsNormEps = 1e-5, RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 8192), MaxPositionEmbeddings = 131072, TieWordEmbeddings = false, TorchDtype = "bfloat16",
        },
        "llama3-70b" => new LlamaConfig
        {
            Family = DecoderFamily.Llama, VocabSize = 128256, HiddenSize = 8192, IntermediateSize = 28672, NumHiddenLayers = layers,
            NumAttentionHeads = 64, NumKeyValueHeads = 8, HeadDim = 128, RmsNormEps = 1e-5, RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 8192), MaxPositionEmbeddings = 131072, TieWordEmbeddings = false, TorchDtype = "bfloat16",
        },
        "llama-3.2-1b" => config with { NumHiddenLayers = layers },
        _ => throw new ArgumentException($"unknown preset '{preset}': use llama3-8b, llama3-70b or llama-3.2-1b"),
    };
    folder ??= Path.Combine(Path.GetTempPath(), $"pip-stream-{preset}-{layers}");
    var clock = Stopwatch.StartNew();
    if (!File.Exists(Path.Combine(folder, "config.json"))) WriteRandomCheckpoint(shape, folder);
    Console.WriteLine($"checkpoint {folder}: {preset}, {layers} layers, written in {clock.Elapsed.TotalSeconds:F0} s; peak RSS so far {Rss("VmHWM") / 1e9:F2} GB");
    try
    {
        using var model = StreamedCausalLM.Open(folder, new StreamingOptions { ComputeType = dtype });
        var rng = new Random(11);
        var combinations = Enumerable.Range(0, pairs).Select(_ =>
        {
            var x = Enumerable.Range(0, length).Select(_ => rng.Next(shape.VocabSize)).ToArray();
            var twin = (int[])x.Clone();
            for (int k = 0; k < 3; k++) twin[rng.Next(1, length)] = rng.Next(shape.VocabSize);
            return LossCombination.Difference(x, twin);
        }).ToArray();
        // Wall and CPU seconds per phase: on a shared machine the CPU seconds (both threads together) are the stable figure.
        var phases = new Dictionary<LayerPassPhase, (double Wall, double Cpu)>();
        var last = Stopwatch.StartNew();
        double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        double lastCpu = Cpu(), startCpu = lastCpu;
        var progress = new Progress(p =>
        {
            double cpu = Cpu() - lastCpu;
            var sofar = phases.GetValueOrDefault(p.Phase);
            phases[p.Phase] = (sofar.Wall + last.Elapsed.TotalSeconds, sofar.Cpu + cpu);
            Console.WriteLine($"  {p.Phase} {p.Step}/{p.Steps}: {last.Elapsed.TotalSeconds:F1} s wall, {cpu:F1} s CPU, RSS {Rss("VmRSS") / 1e9:F2} GB");
            last.Restart();
            lastCpu = Cpu();
        });
        var norm = Norms.L2;
        var sums = new double[model.LayerCount];
        double reduce = 0;
        var sw = Stopwatch.StartNew();
        model.Engine.Gradients(combinations, g =>
        {
            var t = Stopwatch.StartNew();
            var parts = g.Gradients.Select(x => LayerwiseBackward.Norm(x, norm.Order)).ToArray();
            sums[g.Layer] += norm.Combine(parts) / g.ParameterCount;
            reduce += t.Elapsed.TotalSeconds;
        }, progress: progress);
        double seconds = sw.Elapsed.TotalSeconds;
        var stack = model.Stack;
        Console.WriteLine($"streamed pip-round: {preset}, {layers} layers, {pairs} pairs x {length} tokens, compute {dtype}: {seconds:F1} s");
        foreach (var phase in new[] { LayerPassPhase.Forward, LayerPassPhase.Head, LayerPassPhase.Backward })
            Console.WriteLine($"  {phase}: {phases.GetValueOrDefault(phase).Wall:F1} s wall, {phases.GetValueOrDefault(phase).Cpu:F1} s CPU");
        Console.WriteLine($"  total CPU {Cpu() - startCpu:F1} s");
        Console.WriteLine($"  of which reading weights {stack.ReadSeconds:F1} s ({stack.BytesRead / 1e9:F2} GB read), gradient norms {reduce:F1} s");
        Console.WriteLine($"peak RSS {Rss("VmHWM") / 1e9:F2} GB (checkpoint {Directory.GetFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length) / 1e9:F2} GB)");
    }
    finally
    {
        if (!keep && Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }
}

// A random bf16 checkpoint written tensor by tensor, each generated in pieces of at most 64 Mi elements (normal(0, 0.02); norms 1).
static void WriteRandomCheckpoint(LlamaConfig shape, string folder)
{
    var layer = new LlamaDecoderLayer(shape, ScalarType.BFloat16);
    var entries = new List<(string Name, long[] Shape, bool Norm)>
    {
        (LlamaForCausalLM.EmbedTokensWeightName, [shape.VocabSize, shape.HiddenSize], false),
    };
    for (int l = 0; l < shape.NumHiddenLayers; l++)
        foreach (var (name, p) in layer.named_parameters()) entries.Add(($"model.layers.{l}.{name}", p.shape, name.Contains("norm", StringComparison.Ordinal)));
    entries.Add(("model.norm.weight", [shape.HiddenSize], true));
    entries.Add((LlamaForCausalLM.LmHeadWeightName, [shape.VocabSize, shape.HiddenSize], false));
    layer.Dispose();
    var generator = new Generator(7, CPU);
    var sources = entries.Select(e => new SafeTensorSource(e.Name, SafeTensorDType.BF16, e.Shape, (stream, ct) =>
    {
        long count = e.Shape.Aggregate(1L, (a, b) => a * b);
        const long Piece = 64L << 20;
        for (long start = 0; start < count; start += Piece)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(Piece, count - start);
            var t = e.Norm ? ones(n, ScalarType.BFloat16) : (randn(n, generator: generator) * 0.02).to_type(ScalarType.BFloat16);
            stream.Write(t.bytes);
        }
    })).ToList();
    CheckpointWriter.Save(folder, shape, sources, new CheckpointSaveOptions { Overwrite = true });
}

static double Rss(string key)
{
    foreach (var line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith(key + ":", StringComparison.Ordinal))
        {
            return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
    }

    return double.NaN;
}

sealed class Progress(Action<LayerPassProgress> report) : IProgress<LayerPassProgress>
{
    public void Report(LayerPassProgress value) => report(value);
}
