using System.Text.Json;
using Pip.Cli.Tests.Infrastructure;
using Pip.Cli.Commands;
using Pip.Evaluation;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class CompareCommandTests : IDisposable
{
    private readonly TinyModelFixture _fixture;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-compare-tests-" + Guid.NewGuid().ToString("N"));

    public CompareCommandTests(TinyModelFixture fixture)
    {
        _fixture = fixture;
        Directory.CreateDirectory(_root);
        File.WriteAllText(WikiText, " \n = Robert Boulter = \n \n Robert Boulter is an English film , television and theatre actor . \n \n He had a guest role in 2000 . \n");
        File.WriteAllText(Ptb, " the stock market fell sharply on monday \n investors sold shares of <unk> companies \n");
        File.WriteAllLines(BoolQ,
        [
            """{"question": "is the sky blue", "passage": "The sky is blue.", "label": 1}""",
            """{"question": "do cats bark", "passage": "Cats meow.", "label": 0}""",
            """{"question": "is ice cold", "passage": "Ice is cold.", "label": 1}""",
        ]);
        var words = "the quick brown fox jumps over a lazy dog while birds sing in green trees near the quiet river bank".Split(' ');
        File.WriteAllText(Calibration, string.Join("\n\n", Enumerable.Range(0, 3).Select(p => string.Join(' ', Enumerable.Range(0, 40).Select(i => words[(i * 7 + p) % words.Length])))));
    }

    private string WikiText => Path.Combine(_root, "wiki.test.tokens");

    private string Ptb => Path.Combine(_root, "ptb.valid.txt");

    private string BoolQ => Path.Combine(_root, "boolq.jsonl");

    private string Calibration => Path.Combine(_root, "calibration.txt");

    private string Out => Path.Combine(_root, "out");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Compare_TinyModelTwoMethods_ExitsZeroAndWritesTableJsonChartsAndReports()
    {
        _fixture.Created.ExitCode.Should().Be(ExitCodes.Success, _fixture.Created.Error);
        Directory.CreateDirectory(Out);
        File.WriteAllText(Path.Combine(Out, "stale.txt"), "from an earlier run");

        var run = await CliRunner.RunAsync("compare", "--model", _fixture.ModelFolder, "--out", Out, "--overwrite",
            "--methods", "magnitude,block-influence", "--ratios", "0.3", "--wikitext", WikiText, "--ptb", Ptb, "--tasks", $"boolq={BoolQ}",
            "--max-items", "2", "--calibration", Calibration, "--samples", "2", "--window", "32", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        Directory.EnumerateFiles(Out, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Out, f)).Should().BeEquivalentTo(
            "comparison.md", "comparison.json", "importance.png", "perplexity-wikitext2.png", "perplexity-ptb.png", "accuracy.png",
            Path.Combine("reports", "magnitude-30.json"), Path.Combine("reports", "block-influence-30.json"), "settings.json");
        Directory.EnumerateFileSystemEntries(_root).Select(Path.GetFileName).Should().NotContain(n => n!.StartsWith(".out", StringComparison.Ordinal), "no staging folder is left");
        foreach (var png in Directory.EnumerateFiles(Out, "*.png")) ChartsTests.ReadPng(png);

        using var stdout = JsonDocument.Parse(run.Out);
        stdout.RootElement.GetProperty("out").GetString().Should().Be(Out);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Out, "comparison.json")));
        var rows = json.RootElement.GetProperty("rows");
        rows.GetArrayLength().Should().Be(2);
        foreach (var row in rows.EnumerateArray())
        {
            // One ~18 % layer of the tiny preset fits in 30 %.
            row.GetProperty("removed_layers").GetArrayLength().Should().Be(1);
            row.GetProperty("perplexity").GetArrayLength().Should().Be(2);
            row.GetProperty("tasks")[0].GetProperty("items").GetInt32().Should().Be(2);
        }

        json.RootElement.GetProperty("importance").GetArrayLength().Should().Be(2);
        var markdown = File.ReadAllText(Path.Combine(Out, "comparison.md"));
        markdown.Should().Contain("| Ratio | Method | Removed layers | Params removed | WikiText-2 PPL ↓ | PTB PPL ↓ | BoolQ ↑ | Avg ↑ |")
            .And.Contain("| 0% | Dense | – | 0.0% |").And.Contain("| 30% | Magnitude |").And.Contain("![importance](importance.png)");
    }

    [Fact]
    public async Task Compare_Help_IsListedAndDescribesTheOptions()
    {
        var root = await CliRunner.RunAsync("--help");
        var help = await CliRunner.RunAsync("compare", "--help");

        root.Out.Should().Contain("compare");
        help.ExitCode.Should().Be(ExitCodes.Success);
        help.Out.Should().Contain("--methods").And.Contain("--ratios").And.Contain("--wikitext").And.Contain("--ptb").And.Contain("--tasks")
            .And.Contain("--max-items").And.Contain("--calibration").And.Contain("--samples").And.Contain("--seed").And.Contain("--window");
    }

    [Fact]
    public async Task Compare_NothingToEvaluate_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("compare", "--model", _fixture.ModelFolder, "--out", Out, "--calibration", Calibration);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("Nothing to evaluate: give --wikitext, --ptb or --tasks.");
        Directory.Exists(Out).Should().BeFalse();
    }

    [Fact]
    public async Task Compare_BadMethodsRatiosAndTasks_ListsEveryProblem()
    {
        var missing = Path.Combine(_root, "absent.txt");

        var run = await CliRunner.RunAsync("compare", "--model", _fixture.ModelFolder, "--out", Out, "--calibration", Calibration,
            "--methods", "pip,shortgpt", "--ratios", "0.2,1.5,x", "--ptb", missing, "--tasks", $"boolq={BoolQ},squad={BoolQ},piqa");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--methods: Unknown method 'shortgpt'")
            .And.Contain("--ratios: '1.5' is not a number in (0, 1).").And.Contain("--ratios: 'x' is not a number in (0, 1).")
            .And.Contain($"--ptb: PTB file '{missing}' does not exist.")
            .And.Contain("--tasks: Unknown task 'squad'").And.Contain("--tasks: 'piqa' is not FORMAT=FILE or LABEL:FORMAT=FILE.");
    }

    [Fact]
    public void ParseTasks_LabelBeforeFormat_KeepsLabelAndFormat()
    {
        var errors = new List<string>();

        var tasks = CompareCommand.ParseTasks($"endings:openbookqa={BoolQ}, boolq={BoolQ}", errors);

        errors.Should().BeEmpty();
        tasks.Select(t => (t.Kind, t.Label, t.DisplayName)).Should().Equal(
            (ZeroShotTaskKind.OpenBookQA, "endings", "endings"), (ZeroShotTaskKind.BoolQ, (string?)null, "boolq"));
    }

    [Fact]
    public void ParseTasks_EmptyLabel_ReportsTheItem()
    {
        var errors = new List<string>();

        CompareCommand.ParseTasks($":boolq={BoolQ}", errors);

        errors.Should().ContainSingle().Which.Should().Contain("empty LABEL");
    }

    [Fact]
    public async Task Compare_OutputFolderNotEmptyWithoutOverwrite_ExitsWithBadInputAndKeepsIt()
    {
        Directory.CreateDirectory(Out);
        File.WriteAllText(Path.Combine(Out, "keep.txt"), "keep");

        var run = await CliRunner.RunAsync("compare", "--model", _fixture.ModelFolder, "--out", Out, "--wikitext", WikiText, "--calibration", Calibration);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("exists and is not empty");
        File.ReadAllText(Path.Combine(Out, "keep.txt")).Should().Be("keep");
    }
}
