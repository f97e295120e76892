using System.Text.Json.Nodes;
using Pip.Checkpoints;
using Pip.Torch.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using Pip.Torch.Tests.Pruning.Width;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Checkpoints;

public sealed class LaidOutCheckpointTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-tests-layout-" + Guid.NewGuid().ToString("N"));
    private static readonly int[] Tokens = TinyModels.RandomTokens(9, 41);

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

    /// <summary>G = 2, 3 key/value groups, MLP 48, biases on every projection (as FLAP's compensation leaves a Llama), pruned differently per layer.</summary>
    private static TorchCausalLM HeterogeneousLlama()
    {
        var lm = new TorchCausalLM(TinyModels.Random(WidthFixtures.GqaConfig(layers: 4, attentionBias: true, mlpBias: true), seed: 52), null);
        lm.Module.Prune(new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [2], [2] = [0, 1] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [0, 1, 2, 3], [2] = [9], [3] = [5, 6] },
        });
        return lm;
    }

    [Fact]
    public void SaveAs_CompatibleHeterogeneousLlama_WritesUniformShapesWithoutPerLayerConfigAndTheSameLogits()
    {
        var perLayer = Path.Combine(_root, "per-layer");
        var compatible = Path.Combine(_root, "compatible");
        using var lm = HeterogeneousLlama();

        var savedPerLayer = lm.SaveAs(perLayer, CheckpointLayout.PerLayer, null, false, default);
        var savedCompatible = lm.SaveAs(compatible, CheckpointLayout.Compatible, null, false, default);

        ReadConfig(perLayer).ContainsKey("per_layer_config").Should().BeTrue();
        var json = ReadConfig(compatible);
        json.ContainsKey("per_layer_config").Should().BeFalse();
        ((int)json["num_attention_heads"]!, (int)json["num_key_value_heads"]!, (int)json["intermediate_size"]!, (int)json["head_dim"]!)
            .Should().Be((8, 4, 48, 8), "every layer has the largest kept width, 3 groups (6 heads) raised to 4 so that the heads divide hidden_size 32 as LlamaConfig requires, and head_dim is written");
        ((bool)json["attention_bias"]!, (bool)json["mlp_bias"]!).Should().Be((true, true));

        using var a = TorchCausalLM.Load(perLayer, ScalarType.Float32);
        using var b = TorchCausalLM.Load(compatible, ScalarType.Float32);
        b.Config.LayerShapes.Should().BeNull();
        b.Module.Layers.Select(l => l.Shape).Should().AllBeEquivalentTo(new LayerShape(8, 4, 48));
        b.Module.Layers[2].SelfAttn.QProj.bias!.shape.Should().Equal([64]);
        a.ParameterCount.Should().Be(lm.ParameterCount).And.Be(savedPerLayer.ParameterCount);
        b.ParameterCount.Should().Be(savedCompatible.ParameterCount);
        savedPerLayer.PaddingParameterCount.Should().Be(0);
        savedCompatible.PaddingParameterCount.Should().Be(savedCompatible.ParameterCount - lm.ParameterCount).And.BePositive();
        using var scope = NewDisposeScope();
        TinyModels.MaxAbsDiff(Logits(b.Model), Logits(a.Model)).Should().BeLessThan(1e-5);
        TinyModels.MaxAbsDiff(Logits(a.Model), Logits(lm.Model)).Should().Be(0);
    }

    [Fact]
    public void Create_Compatible_PadsWithExactZerosAppendedAfterTheKeptUnits()
    {
        using var lm = HeterogeneousLlama();

        using var laidOut = LaidOutCheckpoint.Create(lm.Model, CheckpointLayout.Compatible);

        laidOut.Layout.Should().Be(CheckpointLayout.Compatible);
        var w = laidOut.Weights;
        using var scope = NewDisposeScope();
        // Layer 2 kept one of three groups (G = 2, d = 8) and is padded to four: q rows 16 …, k/v rows 8 …, o columns 16 … are zero.
        var q = w["model.layers.2.self_attn.q_proj.weight"];
        q.shape.Should().Equal([64, 32]);
        TinyModels.Same(q[..16], lm.Module.Layers[2].SelfAttn.QProj.weight!).Should().BeTrue();
        q[16..].abs().max().item<float>().Should().Be(0);
        w["model.layers.2.self_attn.k_proj.bias"][8..].abs().max().item<float>().Should().Be(0);
        w["model.layers.2.self_attn.o_proj.weight"][.., 16..].abs().max().item<float>().Should().Be(0);
        TinyModels.Same(w["model.layers.2.self_attn.o_proj.bias"], lm.Module.Layers[2].SelfAttn.OProj.bias!).Should().BeTrue();
        // Layer 1 lost 4 channels: gate/up rows 44 … 47 and down columns 44 … 47 are zero.
        w["model.layers.1.mlp.gate_proj.weight"][44..].abs().max().item<float>().Should().Be(0);
        w["model.layers.1.mlp.up_proj.bias"][44..].abs().max().item<float>().Should().Be(0);
        w["model.layers.1.mlp.down_proj.weight"][.., 44..].abs().max().item<float>().Should().Be(0);
        // Layer 0 was not pruned: its tensors are the model's own parameters.
        w["model.layers.0.mlp.gate_proj.weight"].Handle.Should().Be(lm.Module.Layers[0].Mlp.GateProj.weight!.Handle);
    }

    [Fact]
    public void Create_PerLayer_KeepsTheModelsShapesAndConfiguration()
    {
        using var lm = HeterogeneousLlama();

        using var laidOut = LaidOutCheckpoint.Create(lm.Model, CheckpointLayout.PerLayer);

        laidOut.Config.Should().BeSameAs(lm.Config);
        laidOut.PaddingParameterCount.Should().Be(0);
        laidOut.ParameterCount.Should().Be(lm.ParameterCount);
        laidOut.Weights["model.layers.2.self_attn.q_proj.weight"].shape.Should().Equal([16, 32]);
    }

    [Fact]
    public void Create_AutoOnUniformlyPrunedModel_NeedsNoPadding()
    {
        using var lm = new TorchCausalLM(TinyModels.Random(WidthFixtures.GqaConfig(layers: 2), seed: 8), null);
        foreach (var layer in new[] { 0, 1 })
        {
            lm.Module.PruneHeads(layer, [1]);
            lm.Module.PruneChannels(layer, [0, 7]);
        }

        using var laidOut = LaidOutCheckpoint.Create(lm.Model, CheckpointLayout.Auto);

        laidOut.Layout.Should().Be(CheckpointLayout.Compatible);
        laidOut.PaddingParameterCount.Should().Be(0);
        laidOut.Config.Should().BeSameAs(lm.Config);
        ((LlamaConfig)laidOut.Config).GlobalShape.Should().Be(new LayerShape(4, 2, 46));
    }

    [Fact]
    public void Create_AutoWhenGroupSizesDiffer_ChoosesPerLayerAndCompatibleThrows()
    {
        // Layer 1 shares each of its 2 key/value heads among 3 query heads, the others among 2: no single pair fits.
        var config = WidthFixtures.GqaConfig(layers: 2).WithLayerShapes([new LayerShape(6, 3, 48), new LayerShape(6, 2, 48)]);
        using var lm = new TorchCausalLM(TinyModels.Random(config, seed: 4), null);

        using var auto = LaidOutCheckpoint.Create(lm.Model, CheckpointLayout.Auto);
        var compatible = () => LaidOutCheckpoint.Create(lm.Model, CheckpointLayout.Compatible);

        auto.Layout.Should().Be(CheckpointLayout.PerLayer);
        compatible.Should().Throw<NotSupportedException>().WithMessage("*compatible layout*different numbers of query heads (2, 3)*");
    }

    [Fact]
    public void SaveAs_CompatibleHeadAndFfnPrunedOpt_RestoresAllHeadsAsZerosAndReloadsToTheSameLogits()
    {
        var perLayer = Path.Combine(_root, "opt-per-layer");
        var compatible = Path.Combine(_root, "opt-compatible");
        using var lm = new TorchCausalLM(TinyOptModels.Random(TinyOptModels.Config(layers: 3), seed: 61), null);
        var opt = (OptForCausalLM)lm.Model;
        opt.Prune(new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [1], [1] = [0, 3], [2] = [2] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [4, 5], [1] = [1], [2] = [0, 1, 2] },
        });

        lm.SaveAs(perLayer, CheckpointLayout.PerLayer, null, false, default);
        var saved = lm.SaveAs(compatible, CheckpointLayout.Compatible, null, false, default);

        var json = ReadConfig(compatible);
        json.ContainsKey("per_layer_config").Should().BeFalse();
        json.ContainsKey("head_dim").Should().BeFalse("transformers' OPT derives it as hidden_size / num_attention_heads");
        ((int)json["num_attention_heads"]!, (int)json["ffn_dim"]!).Should().Be((4, 47));
        saved.Layout.Should().Be(CheckpointLayout.Compatible);
        using var a = TorchCausalLM.Load(perLayer, ScalarType.Float32);
        using var b = TorchCausalLM.Load(compatible, ScalarType.Float32);
        b.ParameterCount.Should().Be(saved.ParameterCount).And.Be(lm.ParameterCount + saved.PaddingParameterCount);
        using var scope = NewDisposeScope();
        TinyModels.MaxAbsDiff(Logits(b.Model), Logits(a.Model)).Should().BeLessThan(1e-5);
    }
}
