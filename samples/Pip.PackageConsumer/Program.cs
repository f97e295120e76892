// Pip.PackageConsumer: prunes the bundled demo model with Pip taken from NuGet packages (not project references),
// through dependency injection, with importance metrics of its own registered next to the built-in ones: one that needs
// only IPrunableModel (skip-loss) and a gradient-based one written against Pip.Torch's public layer engine
// (diagonal-fisher), which runs the same on the model in memory and streamed layer by layer from its checkpoint.
//
//   build/pack.sh                                          # packs Pip.Abstractions, Pip.Core, Pip.Torch into artifacts/packages
//   dotnet run -c Release --project samples/Pip.PackageConsumer -- [--model DIR] [--calibration FILE]
//       [--ratio 0.2 | --layers N] [--samples 4] [--max-tokens 64] [--device cpu|cuda|cuda:N] [--out DIR]
//       [--metric diagonal-fisher|skip-loss|pip|...] [--stream true]
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Pip;
using Pip.PackageConsumer;
using Pip.Torch;
using Pip.Torch.Streaming;
using TorchSharp;
using static TorchSharp.torch;

var arguments = Arguments.Parse(args);
string modelFolder = arguments.Get("model") ?? Arguments.FindUp(Path.Combine("models", "pip-demo"));
string calibrationFile = arguments.Get("calibration") ?? Arguments.FindUp(Path.Combine("data", "calibration", "brown-sample.txt"));
PruningTarget target = arguments.Get("layers") is not null
    ? PruningTarget.LayerCount(arguments.Int("layers", 1))
    : PruningTarget.Ratio(arguments.Double("ratio", 0.2));
int sampleCount = arguments.Int("samples", 4);
int maxTokens = arguments.Int("max-tokens", 64);
string metric = arguments.Get("metric") ?? DiagonalFisherMetric.MetricName;
bool stream = arguments.Get("stream") is { } streamValue && bool.Parse(streamValue);
Device device = arguments.Get("device") is { } deviceName ? torch.device(deviceName) : CPU;
if (device.type == DeviceType.CUDA && !cuda.is_available())
{
    Console.Error.WriteLine($"Device '{device}' was asked for, but CUDA is not available: reference TorchSharp-cuda-linux or TorchSharp-cuda-windows instead of TorchSharp-cpu.");
    return 2;
}

// Pip in a container: the built-in metrics, Pip.Torch's metrics, and this app's own metric, found by its name.
var services = new ServiceCollection();
services.AddPip(o =>
    {
        o.Metric = metric;
        o.Target = target;
        o.Guard.First = 1;                                        // keep the first decoder layer whatever its score
    })
    .AddTorchMetrics()
    .AddMetric(new SkipLossMetric(maxTokens))
    .AddMetric(new DiagonalFisherMetric(maxTokens));
using var provider = services.BuildServiceProvider();
Console.WriteLine($"Metrics registered: {string.Join(", ", provider.GetRequiredService<IImportanceMetricProvider>().Names)}");
PruningPipeline pipeline = provider.GetRequiredService<IPruningPipelineFactory>().Create();

// float32: bf16 is far slower than fp32 on CPUs without native bf16 instructions. Streamed: no layer is held in memory
// longer than a pass needs it; pruning then only records which layers are gone, and Save copies the rest from the files.
using IDisposable owner = stream
    ? StreamedCausalLM.Open(modelFolder, new StreamingOptions { ComputeType = ScalarType.Float32, Device = device })
    : TorchCausalLM.Load(modelFolder, ScalarType.Float32, device);
var model = (IPrunableModel)owner;
var calibration = CalibrationSet.Load(calibrationFile, new CalibrationOptions { SampleCount = sampleCount, MaxWords = maxTokens });
List<IReadOnlyList<int>> tokens = [.. calibration.Samples.Select(s => model.Tokenize(s.Text))];
double lossBefore = await model.ComputeLossAsync(tokens);
Console.WriteLine($"Model: {modelFolder} ({model.Architecture}, {model.LayerCount} layers, {model.ParameterCount:N0} parameters, {device}, {(stream ? "streamed" : "in memory")})");
Console.WriteLine($"Calibration: {calibration.Samples.Count} samples from {calibrationFile}");

var clock = Stopwatch.StartNew();
PruningReport report = await pipeline.RunAsync(model, calibration);
double lossAfter = await model.ComputeLossAsync(tokens);

Console.WriteLine();
Console.WriteLine($"Pruned with '{report.Settings.Metric}' ({report.Settings.Strategy}) in {clock.Elapsed.TotalSeconds:F1} s, stopped: {report.StopReason}");
foreach (PruningRound round in report.Rounds)
{
    string scores = string.Join(" ", round.Scores.Select((s, i) => $"{round.OriginalLayerIndices[i]}:{s:G3}"));
    string removed = string.Join(", ", round.Removed.Select(r => r.OriginalLayer));
    Console.WriteLine($"  round {round.Round}: scores (original layer:score) {scores}");
    Console.WriteLine($"           removed layer {removed}; {round.LayerCountAfter} layers, {round.ParameterCountAfter:N0} parameters left");
}

Console.WriteLine($"Layers: {report.OriginalLayerCount} -> {report.FinalLayerCount} (removed {string.Join(", ", report.RemovedOriginalLayers)})");
Console.WriteLine($"Parameters: {report.OriginalParameterCount:N0} -> {report.FinalParameterCount:N0} ({1 - (double)report.FinalParameterCount / report.OriginalParameterCount:P1} fewer)");
Console.WriteLine($"Calibration perplexity: {Math.Exp(lossBefore):F1} -> {Math.Exp(lossAfter):F1}");

if (arguments.Get("out") is { } outFolder)
{
    if (model is StreamedCausalLM streamed) streamed.Save(outFolder);
    else ((TorchCausalLM)model).Save(outFolder);
    await PruningReportJson.WriteAsync(report, Path.Combine(outFolder, "pruning-report.json"));
    Console.WriteLine($"Wrote {outFolder}");
}

return 0;

namespace Pip.PackageConsumer
{
    /// <summary>
    /// This app's own importance metric: how much the calibration loss rises when a layer is bypassed, measured on the
    /// first tokens of each sample only (a cheap, coarse variant of the built-in perplexity-drop metric). It needs nothing
    /// but <see cref="IPrunableModel"/>, so it works with any backend.
    /// </summary>
    internal sealed class SkipLossMetric(int maxTokens) : IImportanceMetric
    {
        public const string MetricName = "skip-loss";

        public string Name => MetricName;

        public bool UsesPerturbations => false;

        public async ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
        {
            IPrunableModel model = request.Model;
            List<IReadOnlyList<int>> sequences = [.. request.Samples.Select(s => model.Tokenize(s.Text).Take(maxTokens).ToArray())];
            double baseLoss = await model.ComputeLossAsync(sequences, null, cancellationToken);
            var scores = new double[model.LayerCount];
            for (int layer = 0; layer < scores.Length; layer++)
            {
                double skipped = await model.ComputeLossAsync(sequences, new HashSet<int> { layer }, cancellationToken);
                scores[layer] = skipped - baseLoss;                 // a bigger rise: a more important layer
                request.Progress?.Report(new ScoringProgress(Name, layer + 1, scores.Length));
            }

            return new LayerScores(scores);
        }
    }

    /// <summary>
    /// This app's gradient-based metric: the diagonal Fisher information of each layer, the sum over calibration samples
    /// and over the layer's weights of (∂L/∂w)², divided by the layer's parameter count. It is written against Pip.Torch's
    /// public <see cref="LayerEngine"/> hooks (the built-in metrics use the same ones), so it runs on a model in memory
    /// and on one streamed from its checkpoint alike, with one layer's gradients alive at a time.
    /// </summary>
    internal sealed class DiagonalFisherMetric(int maxTokens) : IImportanceMetric
    {
        public const string MetricName = "diagonal-fisher";

        public string Name => MetricName;

        public bool UsesPerturbations => false;

        public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
        {
            LayerEngine engine = LayerEngine.For(request.Model);
            LossCombination[] samples = [.. request.Samples
                .Select(s => request.Model.Tokenize(s.Text).Take(maxTokens).ToArray())
                .Where(ids => ids.Length >= 2)
                .Select(ids => LossCombination.Single(ids))];
            var scores = new double[engine.LayerCount];
            int done = 0;
            engine.Gradients(samples, layer =>
            {
                foreach (Tensor gradient in layer.Gradients)
                {
                    using Tensor squares = gradient.to_type(ScalarType.Float64).square().sum();
                    scores[layer.Layer] += squares.item<double>() / layer.ParameterCount;
                }

                request.Progress?.Report(new ScoringProgress(Name, ++done, samples.Length * scores.Length));
            }, cancellationToken: cancellationToken);
            return ValueTask.FromResult(new LayerScores(scores));
        }
    }

    /// <summary>Command-line arguments of the form <c>--name value</c>.</summary>
    internal sealed class Arguments
    {
        private readonly Dictionary<string, string> _values = new(StringComparer.OrdinalIgnoreCase);

        public static Arguments Parse(string[] args)
        {
            var result = new Arguments();
            for (int i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                {
                    throw new ArgumentException($"Expected '--name value' pairs, got '{args[i]}'.");
                }

                result._values[args[i][2..]] = args[++i];
            }

            return result;
        }

        public string? Get(string name) => _values.GetValueOrDefault(name);

        public int Int(string name, int fallback) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

        public double Double(string name, double fallback) => Get(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

        /// <summary>A path of the repository, searched upwards from the working folder and from the app's folder.</summary>
        public static string FindUp(string relative)
        {
            foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            {
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    string candidate = Path.Combine(dir.FullName, relative);
                    if (File.Exists(candidate) || Directory.Exists(candidate))
                    {
                        return candidate;
                    }
                }
            }

            throw new FileNotFoundException($"'{relative}' was not found above {Directory.GetCurrentDirectory()}; pass its path.");
        }
    }
}
