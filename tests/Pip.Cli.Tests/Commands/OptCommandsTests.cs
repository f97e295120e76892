using System.Text.Json;
using Pip.Checkpoints;
using Pip.Torch;
using Pip.Torch.Models;

namespace Pip.Cli.Tests.Commands;

/// <summary>The CLI on an OPT folder: create-random --preset opt-tiny, then inspect, eval and prune.</summary>
[Collection(TinyModelCollection.Name)]
public sealed class OptCommandsTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task OptTinyPreset_CreateInspectEvalPrune_WorkOnAnOptFolder()
    {
        var model = Path.Combine(fixture.Root, "opt-tiny");
        var created = await CliRunner.RunAsync("create-random", "--out", model, "--preset", "opt-tiny", "--seed", "3", "--json");
        created.ExitCode.Should().Be(ExitCodes.Success, created.Error);
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(model, "config.json"))))
            config.RootElement.GetProperty("model_type").GetString().Should().Be("opt");

        var inspected = await CliRunner.RunAsync("inspect", "--model", model, "--json");
        inspected.ExitCode.Should().Be(ExitCodes.Success, inspected.Error);
        using (var json = JsonDocument.Parse(inspected.Out))
        using (var lm = TorchCausalLM.Load(model))
        {
            var counts = lm.Model.CountParameters();
            var root = json.RootElement;
            root.GetProperty("family").GetString().Should().Be("OPT");
            root.GetProperty("intermediate_size").GetInt32().Should().Be(256);
            var parameters = root.GetProperty("parameters");
            parameters.GetProperty("total").GetInt64().Should().Be(counts.Total);
            parameters.GetProperty("embeddings").GetInt64().Should().Be(counts.Embedding);
            parameters.GetProperty("final_norm").GetInt64().Should().Be(counts.FinalNorm).And.Be(128);
            parameters.GetProperty("per_layer").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(counts.Layers);
            parameters.GetProperty("other").GetInt64().Should().Be(0);
        }

        var evaluated = await CliRunner.RunAsync("eval", "--model", model, "--text", fixture.TextFile, "--window", "64", "--max-tokens", "200", "--json");
        evaluated.ExitCode.Should().Be(ExitCodes.Success, evaluated.Error);
        using (var json = JsonDocument.Parse(evaluated.Out))
            json.RootElement.GetProperty("perplexity").GetDouble().Should().BeInRange(400, 650, "std-0.02 weights predict nearly uniformly over 512 tokens");

        var pruned = Path.Combine(fixture.Root, "opt-tiny-pruned");
        var run = await CliRunner.RunAsync("prune", "--model", model, "--out", pruned, "--metric", "pip", "--layers", "1",
            "--samples", "2", "--max-tokens", "32", "--sets", "2", "--calibration", PruneFixture.BundledCalibration, "--json");
        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        var config2 = ModelConfigSerializer.Load(Path.Combine(pruned, "config.json"));
        config2.Should().BeOfType<OptConfig>().Which.NumHiddenLayers.Should().Be(3);
        using var reloaded = TorchCausalLM.Load(pruned);
        reloaded.Model.Should().BeOfType<OptForCausalLM>();
    }
}
