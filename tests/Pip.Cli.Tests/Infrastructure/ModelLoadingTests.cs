using System.Text.Json.Nodes;
using Pip.Torch;
using static TorchSharp.torch;

namespace Pip.Cli.Tests.Infrastructure;

/// <summary>What the commands do with checkpoints a user should not load silently: non-finite weights, impossible configs.</summary>
[Collection(TinyModelCollection.Name)]
public sealed class ModelLoadingTests(TinyModelFixture fixture)
{
    private const string Poisoned = "model.layers.0.mlp.down_proj.weight";

    /// <summary>A copy of the tiny model with two NaN values in one weight.</summary>
    private string PoisonedCopy()
    {
        var folder = Path.Combine(fixture.Root, "nan-" + Guid.NewGuid().ToString("N"));
        using var lm = TorchCausalLM.Load(fixture.ModelFolder, ScalarType.Float32);
        using (no_grad())
        {
            var flat = lm.Module.NamedWeights()[Poisoned].view(-1);
            flat[1].fill_(float.NaN);
            flat[2].fill_(float.NaN);
        }
        lm.Save(folder);
        return folder;
    }

    [Fact]
    public async Task Eval_NaNInWeights_ExitsWithBadInputNamingFileTensorAndCount()
    {
        var folder = PoisonedCopy();

        var run = await CliRunner.RunAsync("eval", "--model", folder, "--text", fixture.TextFile, "--window", "16");

        run.ExitCode.Should().Be(ExitCodes.BadInput, run.Error);
        run.Error.Should().Contain(Path.Combine(folder, "model.safetensors")).And.Contain(Poisoned).And.Contain("2 of").And.Contain("--allow-non-finite")
            .And.NotContain("   at ");
        run.Out.Should().BeEmpty();
    }

    [Fact]
    public async Task Eval_NaNInWeightsWithAllowNonFinite_RunsAndWarnsNamingTheTensor()
    {
        var folder = PoisonedCopy();

        var run = await CliRunner.RunAsync(new CliSetup(), ["eval", "--model", folder, "--text", fixture.TextFile, "--window", "16", "--allow-non-finite", "--json"]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        run.Logs.Should().Contain(l => l.Contains("non-finite", StringComparison.Ordinal) && l.Contains(Poisoned, StringComparison.Ordinal) && l.Contains("2 of", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("num_hidden_layers", 1000000000)]
    [InlineData("vocab_size", 1000000000)]
    [InlineData("intermediate_size", 1000000000)]
    public async Task Eval_ConfigAskingForMoreThanTheWeights_RefusedAtOnceNamingConfigKeyAndValue(string key, int value)
    {
        var folder = Path.Combine(fixture.Root, "huge-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(fixture.ModelFolder)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        var configPath = Path.Combine(folder, "config.json");
        var config = JsonNode.Parse(await File.ReadAllTextAsync(configPath))!;
        config[key] = value;
        await File.WriteAllTextAsync(configPath, config.ToJsonString());

        var run = await CliRunner.RunAsync("eval", "--model", folder, "--text", fixture.TextFile, "--window", "16");

        run.ExitCode.Should().Be(ExitCodes.BadInput, run.Error);
        run.Error.Should().Contain(configPath).And.Contain($"'{key}'").And.Contain(value.ToString(System.Globalization.CultureInfo.InvariantCulture)).And.Contain("the weights");
    }

    [Fact]
    public async Task CreateRandom_LeavesNoStagingFolderInTheSystemTemp()
    {
        static string[] Staging() => Directory.GetDirectories(Path.GetTempPath(), "pip-prune-tokenizer-*");
        var before = Staging();
        var output = Path.Combine(fixture.Root, "random-" + Guid.NewGuid().ToString("N"));

        var run = await CliRunner.RunAsync("create-random", "--out", output, "--preset", "tiny");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        File.Exists(Path.Combine(output, "tokenizer.json")).Should().BeTrue();
        Staging().Except(before).Should().BeEmpty();
        Directory.GetDirectories(fixture.Root, ".random-*").Should().BeEmpty("the checkpoint's temporary folder is moved into place");
    }
}
