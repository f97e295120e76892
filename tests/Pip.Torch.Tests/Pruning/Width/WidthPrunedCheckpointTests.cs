using System.Text.Json.Nodes;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning.Width;

public sealed class WidthPrunedCheckpointTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-tests-width-" + Guid.NewGuid().ToString("N"));
    private static readonly int[] Tokens = TinyModels.RandomTokens(7, 23);

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private static JsonObject ReadConfig(string folder) => JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();

    [Fact]
    public void Save_UniformlyWidthPruned_WritesStandardConfigAndReloadsToSameLogits()
    {
        var folder = Path.Combine(_root, "uniform");
        using var lm = new TorchCausalLM(TinyModels.Random(WidthFixtures.GqaConfig(DecoderFamily.Qwen2, attentionBias: true), seed: 31), null);
        foreach (var layer in Enumerable.Range(0, 3))
        {
            lm.Module.PruneHeads(layer, [layer]);
            lm.Module.PruneChannels(layer, Enumerable.Range(2 * layer, 12).ToArray());
        }

        lm.Save(folder);

        var json = ReadConfig(folder);
        json.ContainsKey("per_layer_config").Should().BeFalse();
        ((int)json["num_attention_heads"]!, (int)json["num_key_value_heads"]!, (int)json["intermediate_size"]!, (int)json["head_dim"]!)
            .Should().Be((4, 2, 36, 8));
        using var reloaded = TorchCausalLM.Load(folder, ScalarType.Float32);
        reloaded.Config.LayerShapes.Should().BeNull();
        reloaded.Config.GlobalShape.Should().Be(new LayerShape(4, 2, 36));
        reloaded.ParameterCount.Should().Be(lm.ParameterCount);
        using var scope = NewDisposeScope();
        TinyModels.Same(WidthFixtures.Logits(reloaded.Module, Tokens), WidthFixtures.Logits(lm.Module, Tokens)).Should().BeTrue();
    }

    [Fact]
    public void Save_NonUniformlyWidthPruned_WritesSparsePerLayerConfigAndReloadsToSameLogits()
    {
        var folder = Path.Combine(_root, "per-layer");
        using var lm = new TorchCausalLM(TinyModels.Random(WidthFixtures.GqaConfig(layers: 4, attentionBias: true, mlpBias: true), seed: 32), null);
        lm.Module.Prune(new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [2], [3] = [0, 1] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [0, 1, 2, 3], [2] = [9] },
        });

        lm.Save(folder);

        var json = ReadConfig(folder);
        ((int)json["num_attention_heads"]!, (int)json["num_key_value_heads"]!, (int)json["intermediate_size"]!, (int)json["head_dim"]!)
            .Should().Be((6, 3, 48, 8));
        JsonNode.DeepEquals(json["per_layer_config"], JsonNode.Parse("""
            {
              "1": { "intermediate_size": 44, "num_attention_heads": 4, "num_key_value_heads": 2 },
              "2": { "intermediate_size": 47 },
              "3": { "num_attention_heads": 2, "num_key_value_heads": 1 }
            }
            """)).Should().BeTrue(json["per_layer_config"]!.ToJsonString());

        using var reloaded = TorchCausalLM.Load(folder, ScalarType.Float32);
        reloaded.Config.LayerShapes.Should().Equal(lm.Config.LayerShapes);
        reloaded.Module.Layers.Select(l => l.Shape).Should().Equal(lm.Module.Layers.Select(l => l.Shape));
        using var scope = NewDisposeScope();
        TinyModels.Same(WidthFixtures.Logits(reloaded.Module, Tokens), WidthFixtures.Logits(lm.Module, Tokens)).Should().BeTrue();
    }

    [Fact]
    public void Load_PerLayerConfigDisagreeingWithWeights_ThrowsNamingTheTensor()
    {
        var folder = Path.Combine(_root, "edited");
        using (var lm = new TorchCausalLM(TinyModels.Random(WidthFixtures.GqaConfig(), seed: 33), null))
        {
            lm.Module.PruneChannels(1, [0, 1]);
            lm.Save(folder);
        }
        var json = ReadConfig(folder);
        json["per_layer_config"] = JsonNode.Parse("""{ "1": { "intermediate_size": 47 } }""");
        File.WriteAllText(Path.Combine(folder, "config.json"), json.ToJsonString());

        var act = () => TorchCausalLM.Load(folder, ScalarType.Float32);

        // Refused before the model is built: config.json's per-layer size is checked against the tensor headers.
        act.Should().Throw<Pip.Checkpoints.CheckpointFormatException>()
            .WithMessage("*config.json*'per_layer_config.1.intermediate_size': is 47, but the weights say 46: 'model.layers.1.mlp.gate_proj.weight' has 46 rows*");
    }
}
