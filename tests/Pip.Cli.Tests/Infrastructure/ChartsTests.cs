using System.Buffers.Binary;
using Pip.Cli.Infrastructure;
using Pip.Torch.Evaluation;

namespace Pip.Cli.Tests.Infrastructure;

public sealed class ChartsTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-charts-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    /// <summary>Checks the PNG signature and reads the IHDR size.</summary>
    internal static (int Width, int Height) ReadPng(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes.Length.Should().BeGreaterThan(33, $"{path} must hold a PNG header");
        bytes.AsSpan(0, 8).ToArray().Should().Equal(PngSignature, $"{path} must start with the PNG signature");
        System.Text.Encoding.ASCII.GetString(bytes, 12, 4).Should().Be("IHDR");
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16, 4)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20, 4)));
    }

    private static ComparisonRow Row(string key, string name, double? ratio, double wiki, double ptb, double acc) => new()
    {
        MethodKey = key,
        Method = name,
        TargetRatio = ratio,
        RemovedLayers = [],
        LayerCount = 4,
        ParameterCount = 100,
        RemovedParameterRatio = ratio ?? 0,
        WeightGiB = 0,
        Perplexity = [new DatasetPerplexity("wikitext2", wiki, Math.Log(wiki), 10, 1), new DatasetPerplexity("ptb", ptb, Math.Log(ptb), 10, 1)],
        Tasks = [new TaskAccuracy("boolq", 4, acc, null, null, null, acc)],
        AverageAccuracy = acc,
    };

    private static ComparisonResult Result() => new()
    {
        Model = "/models/demo",
        Architecture = "LlamaForCausalLM",
        OriginalLayerCount = 6,
        OriginalParameterCount = 100,
        StartedAt = DateTimeOffset.UnixEpoch,
        Setup = new ComparisonSetup
        {
            Methods = [ComparisonMethods.Pip, ComparisonMethods.Sleb],
            Ratios = [0.1, 0.3],
            Seed = 42,
            PerturbationSets = 3,
            Norm = "L2",
            MaxTokens = 128,
            CalibrationSamples = ["x"],
            Windowing = "w",
            Window = 128,
            Datasets = [new ComparisonDataset("wikitext2", "w", 1, "j", 10, 10), new ComparisonDataset("ptb", "p", 1, "j", 10, 10)],
            Tasks = [new ComparisonTask("boolq", "b", 4)],
            ShownAccuracy = ShownAccuracy.AccNormWhereReported,
            Dtype = "float32",
            Device = "cpu",
        },
        Dense = Row("dense", "Dense", null, 12, 20, 0.7),
        // WikiText-2 spans two decades (log scale); PTB does not (linear).
        Rows = [Row("pip", "PIP", 0.1, 15, 22, 0.65), Row("pip", "PIP", 0.3, 40, 25, 0.6), Row("sleb", "SLEB", 0.1, 18, 23, 0.62), Row("sleb", "SLEB", 0.3, 900, 30, 0.5)],
        Importance =
        [
            new LayerImportance("pip", "PIP", "pip", [0, 1, 2, 3, 4, 5], [6, 2, 3, 1, 4, 5], LayerImportance.Normalize([6, 2, 3, 1, 4, 5])),
            new LayerImportance("sleb", "SLEB", "perplexity-drop", [0, 1, 2, 3, 4, 5], [9, 1, 1, 2, 3, 8], LayerImportance.Normalize([9, 1, 1, 2, 3, 8])),
        ],
    };

    [Fact]
    public void WriteAll_Comparison_WritesValidPngsOfTheChartSize()
    {
        var files = Charts.WriteAll(Result(), _folder);

        files.Select(Path.GetFileName).Should().Equal("importance.png", "perplexity-wikitext2.png", "perplexity-ptb.png", "accuracy.png");
        foreach (var file in files)
        {
            new FileInfo(file).Length.Should().BeGreaterThan(1000);
            ReadPng(file).Should().Be((Charts.Width, Charts.Height));
        }
    }

    [Fact]
    public void WriteAll_NoTasksNoImportance_WritesOnlyThePerplexityCharts()
    {
        var result = Result() with { Importance = [], Setup = Result().Setup with { Tasks = [] } };

        var files = Charts.WriteAll(result, _folder);

        files.Select(Path.GetFileName).Should().Equal("perplexity-wikitext2.png", "perplexity-ptb.png");
        Directory.GetFiles(_folder).Should().HaveCount(2);
    }
}
