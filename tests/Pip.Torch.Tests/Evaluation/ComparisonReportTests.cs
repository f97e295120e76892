using System.Text.Json;
using Pip.Torch.Evaluation;

namespace Pip.Torch.Tests.Evaluation;

public sealed class ComparisonReportTests
{
    private static ComparisonRow Row(string key, string name, double? ratio, int[] removed, double wiki, double boolq, double piqaNorm) => new()
    {
        MethodKey = key,
        Method = name,
        TargetRatio = ratio,
        RemovedLayers = removed,
        LayerCount = 8 - removed.Length,
        ParameterCount = 1000 - 100 * removed.Length,
        RemovedParameterRatio = removed.Length / 10.0,
        WeightGiB = 0.001,
        Perplexity = [new DatasetPerplexity("wikitext2", wiki, Math.Log(wiki), 100, 4)],
        Tasks =
        [
            new TaskAccuracy("boolq", 10, boolq, null, null, null, boolq),
            new TaskAccuracy("piqa", 10, 0.5, null, piqaNorm, null, piqaNorm),
        ],
        AverageAccuracy = (boolq + piqaNorm) / 2,
        Report = key == "dense" ? null : new PruningReport
        {
            Architecture = "LlamaForCausalLM",
            Settings = new PruningSettings { Metric = key, Strategy = "one-shot", Filters = [], Target = PruningTarget.Ratio(ratio ?? 0.1), Seed = 1, PerturbationSets = 0, Norm = "L2" },
            StartedAt = DateTimeOffset.UnixEpoch,
            OriginalLayerCount = 8,
            OriginalParameterCount = 1000,
            FinalLayerCount = 8 - removed.Length,
            FinalParameterCount = 1000 - 100 * removed.Length,
            RemovedOriginalLayers = removed,
            RemainingOriginalLayers = [],
            Samples = [],
            Rounds = [],
            StopReason = PruningStopReason.TargetReached,
            TargetReached = true,
        },
    };

    private static ComparisonResult Result() => new()
    {
        Model = "/models/demo",
        Architecture = "LlamaForCausalLM",
        OriginalLayerCount = 3,
        OriginalParameterCount = 1000,
        StartedAt = DateTimeOffset.UnixEpoch,
        Setup = new ComparisonSetup
        {
            Methods = [ComparisonMethods.Pip, ComparisonMethods.ShortGpt],
            Ratios = [0.1, 0.2],
            Seed = 42,
            PerturbationSets = 3,
            Norm = "L2",
            MaxTokens = 128,
            CalibrationSamples = ["a b c"],
            Windowing = "non-overlapping windows of 128 tokens",
            Window = 128,
            Datasets = [new ComparisonDataset("wikitext2", "/data/wiki.test.tokens", 10, "rows joined", 500, 384)],
            Tasks = [new ComparisonTask("boolq", "/data/boolq.jsonl", 10), new ComparisonTask("piqa", "/data/piqa.jsonl", 10)],
            ShownAccuracy = ShownAccuracy.AccNormWhereReported,
            Dtype = "float32",
            Device = "cpu",
        },
        Dense = Row("dense", "Dense", null, [], 10, 0.7, 0.6),
        Rows =
        [
            Row("pip", "PIP", 0.1, [5], 12.5, 0.65, 0.58),
            Row("pip", "PIP", 0.2, [5, 2], 20, 0.6, 0.5),
            Row("block-influence", "ShortGPT (BI)", 0.1, [6], 14.25, 0.66, 0.55),
            Row("block-influence", "ShortGPT (BI)", 0.2, [6, 1], 18, 0.55, 0.52),
        ],
        Importance = [new LayerImportance("pip", "PIP", "pip", [0, 1, 2], [3, 1, 2], LayerImportance.Normalize([3, 1, 2]))],
    };

    [Fact]
    public void ToMarkdown_Result_TableOfPipTable2WithBestPerRatioInBold()
    {
        var lines = ComparisonReport.ToMarkdown(Result()).Split('\n');

        lines.Should().Contain("| Ratio | Method | Removed layers | Params removed | WikiText-2 PPL ↓ | BoolQ ↑ | PIQA ↑ | Avg ↑ |");
        lines.Should().Contain("|---|---|---|---:|---:|---:|---:|---:|");
        lines.Should().Contain("| 0% | Dense | – | 0.0% | 10.00 | 70.00 | 60.00 | 65.00 |");
        // Within 10 %: PIP has the lower perplexity, ShortGPT the higher BoolQ; PIQA shows acc_norm.
        lines.Should().Contain("| 10% | PIP | 5 | 10.0% | **12.50** | 65.00 | **58.00** | **61.50** |");
        lines.Should().Contain("| 10% | ShortGPT (BI) | 6 | 10.0% | 14.25 | **66.00** | 55.00 | 60.50 |");
        // Removed layers are listed in ascending order.
        lines.Should().Contain("| 20% | PIP | 2, 5 | 20.0% | 20.00 | **60.00** | 50.00 | **55.00** |");
        lines.Should().Contain("| 20% | ShortGPT (BI) | 1, 6 | 20.0% | **18.00** | 55.00 | **52.00** | 53.50 |");
        lines.Should().Contain("| PIP | 1.00 | 0.00 | 0.50 |");
        lines.Should().Contain(l => l.Contains("WikiText-2: `/data/wiki.test.tokens`", StringComparison.Ordinal));
    }

    [Fact]
    public void ToJson_Result_SnakeCaseWithoutReports()
    {
        using var json = JsonDocument.Parse(ComparisonReport.ToJson(Result()));
        var root = json.RootElement;

        root.GetProperty("format_version").GetInt32().Should().Be(1);
        var row = root.GetProperty("rows")[1];
        row.GetProperty("method").GetString().Should().Be("PIP");
        row.GetProperty("target_ratio").GetDouble().Should().Be(0.2);
        row.GetProperty("removed_layers").EnumerateArray().Select(e => e.GetInt32()).Should().Equal(5, 2);
        row.GetProperty("perplexity")[0].GetProperty("perplexity").GetDouble().Should().Be(20);
        row.GetProperty("tasks")[1].GetProperty("acc_norm").GetDouble().Should().Be(0.5);
        row.TryGetProperty("report", out _).Should().BeFalse();
        root.GetProperty("dense").GetProperty("removed_layers").GetArrayLength().Should().Be(0);
        root.GetProperty("importance")[0].GetProperty("normalized").EnumerateArray().Select(e => e.GetDouble()).Should().Equal(1, 0, 0.5);
        root.GetProperty("setup").GetProperty("shown_accuracy").GetString().Should().Be("acc_norm_where_reported");
    }

    [Fact]
    public void WriteJsonAndMarkdown_Folder_WritesTheFilesAndNoTemporaryFile()
    {
        var folder = Path.Combine(Path.GetTempPath(), "pip-report-" + Guid.NewGuid().ToString("N"));
        try
        {
            ComparisonReport.WriteJson(Result(), Path.Combine(folder, "comparison.json"));
            ComparisonReport.WriteMarkdown(Result(), Path.Combine(folder, "comparison.md"));

            Directory.GetFiles(folder).Select(Path.GetFileName).Should().BeEquivalentTo("comparison.json", "comparison.md");
            File.ReadAllText(Path.Combine(folder, "comparison.md")).Should().Be(ComparisonReport.ToMarkdown(Result()));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Normalize_Scores_MapsMinToZeroAndMaxToOne()
    {
        LayerImportance.Normalize([2, 4, 3]).Should().Equal(0, 1, 0.5);
        LayerImportance.Normalize([5, 5]).Should().Equal(0, 0);
        LayerImportance.Normalize([]).Should().BeEmpty();
    }
}
