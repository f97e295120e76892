using System.Text.Json;
using Pip.Cli.Commands;
using Pip.Search;
using Pip.Torch;

namespace Pip.Cli.Tests.Commands;

/// <summary>
/// A tiny random model with a tokenizer trained on the bundled calibration text; its paragraphs split into two
/// calibration corpora (one paragraph a line) and a held-out validation text; one 3-trial search run once for the class.
/// </summary>
public sealed class SearchFixture : IAsyncLifetime
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "pip-cli-search-tests-" + Guid.NewGuid().ToString("N"));

    public string ModelFolder => Path.Combine(Root, "tiny");

    public string CorpusA => Path.Combine(Root, "part-a.txt");

    public string CorpusB => Path.Combine(Root, "part-b.txt");

    public string Validation => Path.Combine(Root, "held-out.txt");

    public string OutFolder => Path.Combine(Root, "searched");

    internal CliRun Search { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Root);
        var created = await CliRunner.RunAsync("create-random", "--out", ModelFolder, "--preset", "tiny", "--seed", "3",
            "--tokenizer-corpus", PruneFixture.BundledCalibration, "--json");
        if (created.ExitCode != 0) throw new InvalidOperationException("create-random failed: " + created.Error);
        var paragraphs = File.ReadAllText(PruneFixture.BundledCalibration).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(p => string.Join(' ', p.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))).Where(p => p.Length > 0).ToArray();
        int held = paragraphs.Length / 4;
        File.WriteAllLines(Validation, paragraphs[..held]);
        File.WriteAllLines(CorpusA, paragraphs[held..].Where((_, i) => i % 2 == 0));
        File.WriteAllLines(CorpusB, paragraphs[held..].Where((_, i) => i % 2 == 1));

        Search = await CliRunner.RunAsync("search", "--model", ModelFolder, "--calibration", $"{CorpusA},{CorpusB}", "--valid", Validation,
            "--ratio", "0.2", "--mode", "width", "--trials", "3", "--searcher", "tpe", "--seed", "7", "--samples", "2,3", "--seq-lens", "16,24",
            "--metrics", "taylor,magnitude", "--aggregations", "sum,max", "--valid-tokens", "256", "--window", "32", "--layout", "per-layer", "--out", OutFolder, "--json");
    }

    public Task DisposeAsync()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
        return Task.CompletedTask;
    }
}

public sealed class SearchCommandTests(SearchFixture fixture) : IClassFixture<SearchFixture>
{
    [Fact]
    public void Search_ThreeTrials_WritesTheModelTheReportAndTheChart()
    {
        fixture.Search.ExitCode.Should().Be(ExitCodes.Success, fixture.Search.Error);
        using var json = JsonDocument.Parse(fixture.Search.Out);
        var root = json.RootElement;
        root.GetProperty("trials").GetInt32().Should().Be(3);
        root.GetProperty("evaluations").GetInt32().Should().Be(3 - root.GetProperty("cached_trials").GetInt32());
        root.GetProperty("grid_size").GetInt64().Should().Be(2 * 2 * 2 * 2 * 2);
        root.GetProperty("validation_tokens").GetInt32().Should().Be(256);
        root.GetProperty("removed_parameter_ratio").GetDouble().Should().BeInRange(0.05, 0.2);
        root.GetProperty("final_perplexity").GetDouble().Should().BeApproximately(root.GetProperty("best_perplexity").GetDouble(), 1e-6,
            "the best configuration is applied again to a fresh copy, deterministically");

        File.Exists(Path.Combine(fixture.OutFolder, SearchCommand.ChartName)).Should().BeTrue();
        new FileInfo(Path.Combine(fixture.OutFolder, SearchCommand.ChartName)).Length.Should().BeGreaterThan(1000);
        File.Exists(Path.Combine(fixture.OutFolder, SearchCommand.PruningReportName)).Should().BeTrue();
        File.Exists(Path.Combine(fixture.OutFolder, "tokenizer.json")).Should().BeTrue();

        var report = AdaPrunerReport.Read(Path.Combine(fixture.OutFolder, SearchCommand.ReportName));
        report.Trials.Should().HaveCount(3);
        report.Trials.Should().OnlyContain(t => t.Status == TrialStatus.Completed && t.Objective > 0 && t.Configuration != null && t.RemovedParameterRatio > 0.05);
        report.Best!.Objective.Should().Be(report.Trials.Min(t => t.Objective));
        report.Best.Key.Should().Be(root.GetProperty("best_key").GetString());
        report.DenseObjective.Should().BeApproximately(root.GetProperty("dense_perplexity").GetDouble(), 1e-5);
        report.Settings["validation_text"].Should().Be(fixture.Validation);
        report.Space.Parameters.Select(p => p.Name).Should().Contain(["corpus", "samples", "seq_len", "metric", "aggregation"]);

        using var original = TorchCausalLM.Load(fixture.ModelFolder);
        using var pruned = TorchCausalLM.Load(fixture.OutFolder);
        pruned.ParameterCount.Should().Be(root.GetProperty("parameters_after").GetInt64());
        pruned.ParameterCount.Should().BeLessThan(original.ParameterCount);
    }

    [Fact]
    public async Task Search_ValidationIsACalibrationFile_ExitsWithBadInputBeforeLoadingTheModel()
    {
        var run = await CliRunner.RunAsync("search", "--model", fixture.ModelFolder, "--calibration", $"{fixture.CorpusA},{fixture.Validation}",
            "--valid", fixture.Validation, "--trials", "1", "--out", Path.Combine(fixture.Root, "never"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--valid").And.Contain("also a calibration");
        Directory.Exists(Path.Combine(fixture.Root, "never")).Should().BeFalse();
    }

    [Fact]
    public async Task Search_CalibrationHoldsAValidationLine_ExitsWithBadInputNamingTheFile()
    {
        var leaky = Path.Combine(fixture.Root, "leaky.txt");
        File.WriteAllLines(leaky, [.. File.ReadAllLines(fixture.CorpusA).Take(3), File.ReadAllLines(fixture.Validation)[0]]);

        var run = await CliRunner.RunAsync("search", "--model", fixture.ModelFolder, "--calibration", leaky,
            "--valid", fixture.Validation, "--trials", "1", "--out", Path.Combine(fixture.Root, "never2"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(leaky).And.Contain("line 4");
    }

    [Fact]
    public async Task Search_InvalidOptions_ExitsWithBadInputListingEveryProblem()
    {
        var run = await CliRunner.RunAsync("search", "--model", fixture.ModelFolder, "--calibration", fixture.CorpusA, "--valid", fixture.Validation,
            "--samples", "0,x", "--metrics", "pip", "--norms", "L1", "--ratio", "1.5", "--lora-rank", "4", "--out", Path.Combine(fixture.Root, "never3"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--samples: 'x' is not an integer")
            .And.Contain("--samples:")
            .And.Contain("'pip' is not a width metric")
            .And.Contain("--norms: depth options need --mode depth")
            .And.Contain("--ratio")
            .And.Contain("--lora-rank: recovery options need --lora-steps");
    }
}
