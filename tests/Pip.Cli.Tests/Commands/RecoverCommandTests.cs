using System.Text.Json;
using Pip.Torch;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class RecoverCommandTests(TinyModelFixture fixture) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-cli-recover-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Recover_TinyModel_TrainsMergesAndWritesAPlainCheckpointOfTheSameShape()
    {
        var outFolder = Path.Combine(_root, "recovered");
        var adapters = Path.Combine(_root, "adapters");
        var run = await CliRunner.RunAsync("recover", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--out", outFolder,
            "--adapters-out", adapters, "--holdout", "5", "--rank", "4", "--alpha", "8", "--dropout", "0", "--steps", "12", "--lr", "3e-2",
            "--batch-size", "4", "--seq-len", "16", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        root.GetProperty("steps").GetInt64().Should().Be(12);
        root.GetProperty("adapted_modules").GetInt32().Should().Be(4 * 7, "the tiny preset has 4 layers");
        root.GetProperty("rank").GetInt32().Should().Be(4);
        root.GetProperty("validation").GetString().Should().Contain("every 5th line");
        var before = root.GetProperty("validation_loss_before").GetDouble();
        var after = root.GetProperty("validation_loss_after").GetDouble();
        after.Should().BeLessThan(before - 0.1, "the held-out lines repeat the training sentences");
        root.GetProperty("perplexity_after").GetDouble().Should().BeApproximately(Math.Exp(after), 1e-3);

        using var original = TorchCausalLM.Load(fixture.ModelFolder);
        using var recovered = TorchCausalLM.Load(outFolder);
        recovered.ParameterCount.Should().Be(original.ParameterCount);
        recovered.Tokenizer.Should().NotBeNull("the tokenizer files are copied");
        root.GetProperty("parameters").GetInt64().Should().Be(original.ParameterCount);
        var want = original.Module.NamedWeights();
        foreach (var (name, tensor) in recovered.Module.NamedWeights())
        {
            bool same = tensor.equal(want[name]).all().item<bool>();
            if (name.EndsWith("proj.weight", StringComparison.Ordinal)) same.Should().BeFalse($"{name} has a merged update");
            else same.Should().BeTrue($"{name} is not adapted");
        }

        File.Exists(Path.Combine(adapters, "adapter_model.safetensors")).Should().BeTrue();
        File.Exists(Path.Combine(adapters, "adapter_config.json")).Should().BeTrue();
    }

    [Fact]
    public async Task Recover_OutputIsTheModelFolder_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("recover", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--out", fixture.ModelFolder, "--overwrite");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("is the model folder");
    }

    [Fact]
    public async Task Recover_InvalidOptions_ListsEveryProblemWithItsOption()
    {
        var run = await CliRunner.RunAsync("recover", "--model", fixture.ModelFolder, "--text", fixture.TextFile, "--out", Path.Combine(_root, "x"),
            "--rank", "0", "--targets", "q_proj,qkv", "--steps", "10", "--warmup", "10");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--rank").And.Contain("--targets").And.Contain("qkv").And.Contain("--warmup (10)");
        Directory.Exists(Path.Combine(_root, "x")).Should().BeFalse();
    }

    [Fact]
    public async Task Recover_TextTooShortForOneBatch_ExitsWithBadInputNamingTheFile()
    {
        Directory.CreateDirectory(_root);
        var shortText = Path.Combine(_root, "short.txt");
        await File.WriteAllTextAsync(shortText, "Hi.\n");
        var run = await CliRunner.RunAsync("recover", "--model", fixture.ModelFolder, "--text", shortText, "--out", Path.Combine(_root, "y"), "--seq-len", "64");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("short.txt").And.Contain("tokens");
    }
}
