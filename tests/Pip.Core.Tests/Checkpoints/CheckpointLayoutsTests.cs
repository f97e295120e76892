using System.Text.Json.Nodes;
using Pip.Checkpoints;

namespace Pip.Core.Tests.Checkpoints;

/// <summary>The rules of <see cref="CheckpointLayout"/>: when a compatible form exists, its configuration and what auto picks.</summary>
public sealed class CheckpointLayoutsTests
{
    private static LlamaConfig Llama(params LayerShape[] shapes) => Config(DecoderFamily.Llama, shapes);

    private static LlamaConfig Config(DecoderFamily family, params LayerShape[] shapes)
    {
        var config = new LlamaConfig
        {
            Family = family,
            VocabSize = 10,
            HiddenSize = 64,
            IntermediateSize = 256,
            NumHiddenLayers = shapes.Length,
            NumAttentionHeads = 8,
            NumKeyValueHeads = 4,
            HeadDim = 8,
        };
        return config.WithLayerShapes(shapes);
    }

    private static OptConfig Opt(params OptLayerShape[] shapes)
    {
        var config = new OptConfig
        {
            VocabSize = 10,
            HiddenSize = 32,
            FfnDim = 48,
            NumHiddenLayers = shapes.Length,
            NumAttentionHeads = 4,
            HeadDim = 8,
            WordEmbedProjDim = 32,
        };
        return config.WithLayerShapes(shapes);
    }

    [Fact]
    public void CompatibleConfig_HeterogeneousLlama_TakesTheLargestKeyValueGroupsAndWidthWithoutPerLayerConfig()
    {
        var config = Llama(new LayerShape(8, 4, 256), new LayerShape(6, 3, 200), new LayerShape(2, 1, 220));

        var compatible = (LlamaConfig)CheckpointLayouts.CompatibleConfig(config);

        compatible.LayerShapes.Should().BeNull();
        compatible.GlobalShape.Should().Be(new LayerShape(8, 4, 256));
        var json = JsonNode.Parse(compatible.Serialize())!.AsObject();
        json.ContainsKey("per_layer_config").Should().BeFalse();
        ((int)json["head_dim"]!).Should().Be(8);
    }

    [Fact]
    public void CompatibleConfig_EveryLayerPrunedToHeadsDividingHidden_KeepsFewerHeadsThanHiddenOverHeadDimAndWritesHeadDim()
    {
        var config = Llama(new LayerShape(4, 2, 200), new LayerShape(2, 1, 180));

        var compatible = (LlamaConfig)CheckpointLayouts.CompatibleConfig(config);

        compatible.GlobalShape.Should().Be(new LayerShape(4, 2, 200), "Llama reads head_dim, so the heads need not fill hidden_size");
        var json = JsonNode.Parse(compatible.Serialize())!.AsObject();
        ((int)json["num_attention_heads"]!, (int)json["num_key_value_heads"]!, (int)json["head_dim"]!, (int)json["intermediate_size"]!).Should().Be((4, 2, 8, 200));
    }

    [Fact]
    public void CompatibleConfig_LlamaHeadsNotDividingHidden_AddsKeyValueGroupsUntilTheyDo()
    {
        // 6 heads do not divide 64 (transformers' LlamaConfig refuses that); 8 do.
        var config = Llama(new LayerShape(6, 3, 200), new LayerShape(4, 2, 180));

        ((LlamaConfig)CheckpointLayouts.CompatibleConfig(config)).GlobalShape.Should().Be(new LayerShape(8, 4, 200));
    }

    [Fact]
    public void CompatibleConfig_Qwen2HeadsNotDividingHidden_KeepsTheLargestKeptGroups()
    {
        var config = Config(DecoderFamily.Qwen2, new LayerShape(6, 3, 200), new LayerShape(4, 2, 180)) with { AttentionBias = true };

        ((LlamaConfig)CheckpointLayouts.CompatibleConfig(config)).GlobalShape.Should().Be(new LayerShape(6, 3, 200), "Qwen2's configuration has no such check");
    }

    [Fact]
    public void CompatibleObstacle_LlamaGroupSizeNotDividingHidden_ExplainsTheConstraint()
    {
        var config = Llama(new LayerShape(6, 1, 200), new LayerShape(6, 1, 180));

        CheckpointLayouts.CompatibleObstacle(config).Should().Contain("no multiple of its 6 query heads per key/value head divides hidden_size (64)");
        CheckpointLayouts.Resolve(config, CheckpointLayout.Auto).Should().Be(CheckpointLayout.PerLayer);
    }

    [Fact]
    public void CompatibleConfig_UniformConfig_IsReturnedUnchanged()
    {
        var config = Llama(new LayerShape(4, 2, 200), new LayerShape(4, 2, 200));

        CheckpointLayouts.CompatibleConfig(config).Should().BeSameAs(config);
    }

    [Fact]
    public void CompatibleConfig_Opt_RestoresAllHiddenOverHeadDimHeadsAndTheLargestFfn()
    {
        var config = Opt(new OptLayerShape(3, 48), new OptLayerShape(2, 40));

        var compatible = (OptConfig)CheckpointLayouts.CompatibleConfig(config);

        compatible.LayerShapes.Should().BeNull();
        compatible.GlobalShape.Should().Be(new OptLayerShape(4, 48));
        JsonNode.Parse(compatible.Serialize())!.AsObject().ContainsKey("head_dim").Should().BeFalse();
    }

    [Fact]
    public void CompatibleConfig_UniformlyHeadPrunedOpt_StillRestoresTheHeads()
    {
        var config = Opt(new OptLayerShape(3, 48), new OptLayerShape(3, 48));

        ((OptConfig)CheckpointLayouts.CompatibleConfig(config)).NumAttentionHeads.Should().Be(4, "transformers' OPT derives head_dim as hidden_size / num_attention_heads");
    }

    [Theory]
    [InlineData(CheckpointLayout.Auto, CheckpointLayout.Compatible)]
    [InlineData(CheckpointLayout.PerLayer, CheckpointLayout.PerLayer)]
    [InlineData(CheckpointLayout.Compatible, CheckpointLayout.Compatible)]
    public void Resolve_EqualGroupSizes_AutoPicksCompatible(CheckpointLayout requested, CheckpointLayout expected)
    {
        var config = Llama(new LayerShape(8, 4, 256), new LayerShape(2, 1, 10));

        CheckpointLayouts.CompatibleObstacle(config).Should().BeNull();
        CheckpointLayouts.Resolve(config, requested).Should().Be(expected);
    }

    [Fact]
    public void Resolve_DifferentQueryHeadsPerKeyValueHead_AutoPicksPerLayerAndCompatibleThrows()
    {
        var config = Llama(new LayerShape(8, 4, 256), new LayerShape(8, 2, 256));

        CheckpointLayouts.Resolve(config, CheckpointLayout.Auto).Should().Be(CheckpointLayout.PerLayer);
        CheckpointLayouts.CompatibleObstacle(config).Should().Contain("different numbers of query heads (2, 4)");
        var act = () => CheckpointLayouts.Resolve(config, CheckpointLayout.Compatible);
        act.Should().Throw<NotSupportedException>().WithMessage("*LlamaForCausalLM cannot be written in the compatible layout*per-layer*");
        var config2 = () => CheckpointLayouts.CompatibleConfig(config);
        config2.Should().Throw<NotSupportedException>();
    }

    [Fact]
    public void Resolve_OptWhoseHeadDimDoesNotDivideHidden_AutoPicksPerLayer()
    {
        var config = Opt(new OptLayerShape(3, 48)) with { HeadDim = 12 };

        CheckpointLayouts.CompatibleObstacle(config).Should().Contain("does not divide hidden_size (32)");
        CheckpointLayouts.Resolve(config, CheckpointLayout.Auto).Should().Be(CheckpointLayout.PerLayer);
    }

    [Theory]
    [InlineData("auto", CheckpointLayout.Auto)]
    [InlineData("per-layer", CheckpointLayout.PerLayer)]
    [InlineData("compatible", CheckpointLayout.Compatible)]
    public void TryParse_CommandLineNames_RoundTripThroughName(string name, CheckpointLayout layout)
    {
        CheckpointLayouts.TryParse(name, out var parsed).Should().BeTrue();
        parsed.Should().Be(layout);
        CheckpointLayouts.Name(layout).Should().Be(name);
        CheckpointLayouts.Names.Should().Contain(name);
    }

    [Fact]
    public void TryParse_UnknownName_ReturnsFalse() => CheckpointLayouts.TryParse("padded", out _).Should().BeFalse();
}
