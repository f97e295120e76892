using System.Text.Json;
using System.Text.Json.Nodes;
using Pip.Torch;
using Pip.Torch.Pruning.Width;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class IdeaCommandTests(TinyModelFixture fixture) : IDisposable
{
    private const int TinyLayers = 4;
    private const int TinyHidden = 64;
    private const int TinyIntermediate = 176;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-cli-idea-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Idea_TinyModel_PrunesToTheTargetIntermediateSizeAndSavesALoadableModel()
    {
        var outFolder = Path.Combine(_root, "idea");
        var run = await CliRunner.RunAsync("idea", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--out", outFolder,
            "--target-intermediate", "96", "--steps", "12", "--interval", "2", "--holdout", "5", "--lr", "3e-3", "--batch-size", "4", "--seq-len", "16", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        root.GetProperty("steps").GetInt64().Should().Be(12);
        root.GetProperty("intermediate_size_before").GetInt32().Should().Be(TinyIntermediate);
        root.GetProperty("intermediate_size_after").GetInt32().Should().Be(96);
        root.GetProperty("window_start_step").GetInt32().Should().Be(4, "0.3 × 12 = 3.6");
        root.GetProperty("window_end_step").GetInt32().Should().Be(7, "0.6 × 12 = 7.2");
        root.GetProperty("kd_teacher").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("warmup_steps").GetInt32().Should().Be(0, "continued training has no warm-up unless asked for");
        double.IsFinite(root.GetProperty("validation_loss_after").GetDouble()).Should().BeTrue();

        var config = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(outFolder, "config.json")))!;
        config["intermediate_size"]!.GetValue<int>().Should().Be(96);
        using var original = TorchCausalLM.Load(fixture.ModelFolder);
        using var pruned = TorchCausalLM.Load(outFolder);
        pruned.Config.IntermediateSize.Should().Be(96);
        pruned.Module.Layers.Should().OnlyContain(l => l.Mlp.IntermediateSize == 96);
        long removed = TinyLayers * 3L * TinyHidden * (TinyIntermediate - 96);
        pruned.ParameterCount.Should().Be(original.ParameterCount - removed);
        root.GetProperty("parameters_after").GetInt64().Should().Be(pruned.ParameterCount);
        pruned.Tokenizer.Should().NotBeNull();

        // The effective settings repeat the run: no distillation option is recorded without --kd-teacher.
        var settings = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(outFolder, "settings.json")))!.AsObject();
        settings["command"]!.GetValue<string>().Should().Be("idea");
        settings["target-intermediate"]!.GetValue<int>().Should().Be(96);
        settings.ContainsKey("alpha").Should().BeFalse();
        settings.ContainsKey("temperature").Should().BeFalse();
    }

    [Fact]
    public async Task Idea_WithTheModelAsKdTeacher_DistilsAndPrunes()
    {
        var outFolder = Path.Combine(_root, "idea-kd");
        var run = await CliRunner.RunAsync("idea", "--model", fixture.ModelFolder, "--kd-teacher", fixture.ModelFolder, "--alpha", "0.3", "--temperature", "1.5",
            "--text", fixture.TextFile, "--out", outFolder, "--target-intermediate", "120", "--steps", "10", "--interval", "1", "--shape", "linear",
            "--holdout", "5", "--lr", "3e-3", "--batch-size", "4", "--seq-len", "16", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        root.GetProperty("kd_teacher").GetString().Should().Be(Path.GetFullPath(fixture.ModelFolder));
        root.GetProperty("alpha").GetDouble().Should().Be(0.3);
        root.GetProperty("temperature").GetDouble().Should().Be(1.5);
        root.GetProperty("shape").GetString().Should().Be("linear");
        root.GetProperty("teacher_validation_loss").GetDouble().Should().BeApproximately(root.GetProperty("validation_loss_before").GetDouble(), 1e-4,
            "before training the model is its own teacher, evaluated on the same sequences");
        using var pruned = TorchCausalLM.Load(outFolder);
        pruned.Config.IntermediateSize.Should().Be(120);
    }

    [Fact]
    public async Task Idea_InvalidOptions_ListsEveryProblemWithItsOption()
    {
        var outFolder = Path.Combine(_root, "x");
        var run = await CliRunner.RunAsync("idea", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--out", outFolder,
            "--target-intermediate", TinyIntermediate.ToString(System.Globalization.CultureInfo.InvariantCulture), "--start-fraction", "0.7", "--end-fraction", "0.5",
            "--interval", "0", "--ema", "1.5", "--alpha", "0.3", "--lr", "20");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("6 problems").And.Contain("--target-intermediate (176)").And.Contain("--end-fraction (0.5) must be greater than --start-fraction (0.7)")
            .And.Contain("--interval").And.Contain("--ema").And.Contain("--alpha needs --kd-teacher").And.Contain("--lr");
        Directory.Exists(outFolder).Should().BeFalse();
    }

    [Fact]
    public async Task Idea_ModelWithLayersOfDifferentIntermediateSizes_ExitsWithBadInputNamingTheFolder()
    {
        var model = Path.Combine(_root, "heterogeneous");
        using (var lm = TorchCausalLM.Load(fixture.ModelFolder))
        {
            lm.Module.PruneChannels(1, [0, 1, 2, 3]);
            lm.Save(model);
        }

        var run = await CliRunner.RunAsync("idea", "--model", model, "--text", fixture.TextFile, "--out", Path.Combine(_root, "z"), "--target-intermediate", "96");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(model).And.Contain("176, 172");
    }

    [Fact]
    public async Task Idea_WindowOfNoStep_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("idea", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--out", Path.Combine(_root, "y"),
            "--target-intermediate", "96", "--steps", "4", "--start-fraction", "0.5", "--end-fraction", "0.6");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("leave no step to prune in");
    }
}
