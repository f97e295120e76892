using System.Text.Json.Nodes;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning.Width;

public sealed class OptWidthPrunerTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-tests-optwidth-" + Guid.NewGuid().ToString("N"));
    private static readonly int[] Tokens = TinyModels.RandomTokens(7, 23);

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private static JsonObject ReadConfig(string folder) => JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();

    private static Tensor Logits(ICausalLMModule model)
    {
        using var ids = TinyModels.Ids(Tokens);
        using var noGrad = no_grad();
        return model.Logits(ids);
    }

    [Fact]
    public void Prune_HeadsAndChannels_EqualsZeroingTheirOutputColumns()
    {
        var config = TinyOptModels.Config(layers: 2);
        using var pruned = TinyOptModels.Random(config, seed: 17);
        using var zeroed = TinyOptModels.Random(config, seed: 17);
        using (no_grad())
        {
            // Head 1 of layer 0 = out_proj input columns 8 … 15; channels 3 and 40 of layer 1 = fc2 columns.
            zeroed.Layers[0].SelfAttn.OutProj.weight![.., 8..16].zero_();
            zeroed.Layers[1].Fc2.weight![.., 3].zero_();
            zeroed.Layers[1].Fc2.weight![.., 40].zero_();
        }

        var result = pruned.Prune(new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [1] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [40, 3, 3] },
        });

        result.LayerShapes.Should().Equal(new OptLayerShape(3, 48), new OptLayerShape(4, 46));
        pruned.NamedWeights()["model.decoder.layers.0.self_attn.q_proj.bias"].shape.Should().Equal([24]);
        pruned.NamedWeights()["model.decoder.layers.1.fc1.bias"].shape.Should().Equal([46]);
        pruned.NamedWeights()["model.decoder.layers.0.self_attn.out_proj.bias"].shape.Should().Equal([32]);
        using var expected = Logits(zeroed);
        using var actual = Logits(pruned);
        TinyModels.MaxAbsDiff(actual, expected).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Prune_AllHeadsOfALayer_ThrowsAndLeavesTheModelUnchanged()
    {
        using var model = TinyOptModels.Random(TinyOptModels.Config(layers: 1), seed: 2);
        var act = () => model.Prune(new WidthPruningPlan
        {
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0] },
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0, 1, 2, 3] },
        });
        act.Should().Throw<ArgumentException>().WithMessage("*all 4 of its heads*");
        model.Layers[0].Shape.Should().Be(new OptLayerShape(4, 48));
    }

    [Fact]
    public void Save_UniformFfnPruning_WritesStandardOptConfigAndReloadsIdenticalLogits()
    {
        var folder = Path.Combine(_root, "ffn");
        using var lm = new TorchCausalLM(TinyOptModels.Random(TinyOptModels.Config(layers: 3), seed: 31), null);
        var opt = (OptForCausalLM)lm.Model;
        foreach (var layer in Enumerable.Range(0, 3)) opt.PruneChannels(layer, Enumerable.Range(3 * layer, 16).ToArray());
        lm.Save(folder);

        var json = ReadConfig(folder);
        ((int)json["ffn_dim"]!).Should().Be(32);
        json.ContainsKey("per_layer_config").Should().BeFalse();
        json.ContainsKey("head_dim").Should().BeFalse("heads were not touched, so transformers' OPT loads this checkpoint as it is");
        using var reloaded = TorchCausalLM.Load(folder, ScalarType.Float32);
        ((OptConfig)reloaded.ModelConfig).FfnDim.Should().Be(32);
        reloaded.ParameterCount.Should().Be(lm.ParameterCount);
        using var expected = Logits(lm.Model);
        using var actual = Logits(reloaded.Model);
        TinyModels.Same(actual, expected).Should().BeTrue();
    }

    [Fact]
    public void Save_PerLayerHeadsAndFfn_WritesHeadDimAndPerLayerConfigAndReloadsIdenticalLogits()
    {
        var folder = Path.Combine(_root, "mixed");
        using var lm = new TorchCausalLM(TinyOptModels.Random(TinyOptModels.Config(layers: 3, preNorm: false, wordEmbedProjDim: 16), seed: 32), null);
        var opt = (OptForCausalLM)lm.Model;
        opt.PruneHeads(0, [0, 2]);
        opt.PruneHeads(1, [3]);
        opt.PruneHeads(2, [1]);
        opt.PruneChannels(2, Enumerable.Range(0, 8).ToArray());
        lm.Save(folder);

        var json = ReadConfig(folder);
        ((int)json["num_attention_heads"]!).Should().Be(3);
        ((int)json["head_dim"]!).Should().Be(8, "hidden_size / num_attention_heads no longer gives the head width");
        json["per_layer_config"]!.ToJsonString().Should().Be("""{"0":{"num_attention_heads":2},"2":{"ffn_dim":40}}""");
        using var reloaded = TorchCausalLM.Load(folder, ScalarType.Float32);
        ((OptForCausalLM)reloaded.Model).Layers.Select(l => l.Shape).Should().Equal(opt.Layers.Select(l => l.Shape));
        using var expected = Logits(lm.Model);
        using var actual = Logits(reloaded.Model);
        TinyModels.Same(actual, expected).Should().BeTrue();
    }
}
