using System.Text.Json;
using Pip.Torch;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class InspectCommandTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task Inspect_TinyModelJson_CountsMatchTheLoadedModel()
    {
        var run = await CliRunner.RunAsync("inspect", "--model", fixture.ModelFolder, "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        var parameters = root.GetProperty("parameters");
        using var model = TorchCausalLM.Load(fixture.ModelFolder);
        var counts = model.Module.CountParameters();
        root.GetProperty("layers").GetInt32().Should().Be(model.LayerCount);
        root.GetProperty("dtype").GetString().Should().Be("float32");
        parameters.GetProperty("total").GetInt64().Should().Be(counts.Total);
        parameters.GetProperty("embeddings").GetInt64().Should().Be(counts.Embedding);
        parameters.GetProperty("lm_head").GetInt64().Should().Be(counts.LmHead).And.BeGreaterThan(0);
        parameters.GetProperty("per_layer").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(counts.Layers);
        root.GetProperty("weight_bytes").GetInt64().Should().Be(4 * counts.Total);
    }

    [Fact]
    public async Task Inspect_TinyModelTable_ShowsShapeAndParameters()
    {
        var run = await CliRunner.RunAsync("inspect", "--model", fixture.ModelFolder);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        run.Out.Should().Contain("Heads / KV heads  4 / 2").And.Contain("layers").And.Contain("GiB");
    }

    [Fact]
    public async Task Inspect_Tpot_ReportsPositiveMedianTimingsOfTheRequestedRuns()
    {
        var run = await CliRunner.RunAsync("inspect", "--model", fixture.ModelFolder, "--tpot", "--new-tokens", "4", "--runs", "3", "--warmup", "1", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var decoding = json.RootElement.GetProperty("decoding");
        decoding.GetProperty("new_tokens").GetInt32().Should().Be(4);
        decoding.GetProperty("measured_runs").GetInt32().Should().Be(3);
        decoding.GetProperty("warmup_runs").GetInt32().Should().Be(1);
        decoding.GetProperty("time_per_output_token_ms").GetDouble().Should().BeGreaterThan(0);
        decoding.GetProperty("time_to_first_token_ms").GetDouble().Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task Inspect_WidthPrunedModel_ListsEachLayersSizes()
    {
        var pruned = Path.Combine(Path.GetTempPath(), $"pip-inspect-{Guid.NewGuid():N}");
        try
        {
            using (var model = TorchCausalLM.Load(fixture.ModelFolder))
            {
                Pip.Torch.Pruning.Width.WidthPruner.PruneChannels(model.Module, 1, [0, 1, 2]);
                model.Save(pruned);
            }

            var run = await CliRunner.RunAsync("inspect", "--model", pruned, "--json");
            var table = await CliRunner.RunAsync("inspect", "--model", pruned);

            run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
            using var json = JsonDocument.Parse(run.Out);
            var sizes = json.RootElement.GetProperty("per_layer_sizes").EnumerateArray().Select(e => e.GetProperty("intermediate_size").GetInt32()).ToArray();
            using var original = TorchCausalLM.Load(fixture.ModelFolder);
            int ffn = original.Config.IntermediateSize;
            sizes.Should().HaveCount(original.LayerCount);
            sizes[1].Should().Be(ffn - 3);
            sizes.Where((_, i) => i != 1).Should().OnlyContain(v => v == ffn);
            table.Out.Should().Contain("Per-layer sizes").And.Contain($"1: ").And.Contain($"FFN {ffn - 3}");
        }
        finally
        {
            if (Directory.Exists(pruned)) Directory.Delete(pruned, true);
        }
    }

    [Fact]
    public async Task Inspect_WithoutTpot_HasNoDecodingTimings()
    {
        var run = await CliRunner.RunAsync("inspect", "--model", fixture.ModelFolder, "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        (json.RootElement.TryGetProperty("decoding", out var d) && d.ValueKind != JsonValueKind.Null).Should().BeFalse();
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("eval")]
    public async Task Command_MissingModelFolder_ExitsWithBadInputNamingFolder(string command)
    {
        var missing = Path.Combine(fixture.Root, "no-such-model");
        var run = await CliRunner.RunAsync(ArgsFor(command, missing));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(missing).And.Contain("does not exist").And.NotContain("   at ");
        run.Out.Should().BeEmpty();
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("eval")]
    public async Task Command_MalformedConfig_ExitsWithBadInputNamingFile(string command)
    {
        var broken = Path.Combine(fixture.Root, "broken-" + command);
        Directory.CreateDirectory(broken);
        foreach (var file in Directory.GetFiles(fixture.ModelFolder)) File.Copy(file, Path.Combine(broken, Path.GetFileName(file)));
        var config = Path.Combine(broken, "config.json");
        await File.WriteAllTextAsync(config, "{ \"hidden_size\": 64, ");

        var run = await CliRunner.RunAsync(ArgsFor(command, broken));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(config).And.NotContain("   at ");
    }

    private string[] ArgsFor(string command, string model) =>
        command == "eval" ? [command, "--model", model, "--text", fixture.TextFile] : [command, "--model", model];
}
