using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

public sealed class LayerRemovalTests
{
    [Fact]
    public void RemoveLayers_TwoOfFive_RenumbersKeysAndEqualsModelBuiltWithKeptLayers()
    {
        var config = TinyModels.Config(layers: 5);
        using var model = TinyModels.Random(config, seed: 3);
        var countsBefore = model.CountParameters();

        // The expected model: three layers holding the weights of layers 0, 2 and 4.
        var keptOld = new[] { 0, 2, 4 };
        using var expected = new LlamaForCausalLM(config with { NumHiddenLayers = 3 });
        var renamed = new Dictionary<string, Tensor>();
        foreach (var (name, p) in model.NamedWeights())
        {
            if (!name.StartsWith("model.layers.", StringComparison.Ordinal)) { renamed[name] = p; continue; }
            var parts = name.Split('.', 4);
            var newIndex = Array.IndexOf(keptOld, int.Parse(parts[2]));
            if (newIndex >= 0) renamed[$"model.layers.{newIndex}.{parts[3]}"] = p;
        }
        expected.LoadWeights(renamed);

        var newConfig = model.RemoveLayers(new[] { 3, 1, 3 });

        newConfig.NumHiddenLayers.Should().Be(3);
        model.Config.Should().Be(newConfig);
        model.Layers.Should().HaveCount(3);
        var layerIndices = model.state_dict().Keys
            .Where(k => k.StartsWith("model.layers.", StringComparison.Ordinal))
            .Select(k => int.Parse(k.Split('.')[2])).Distinct().Order().ToArray();
        layerIndices.Should().Equal(0, 1, 2);
        model.NamedWeights().Keys.Should().BeEquivalentTo(expected.NamedWeights().Keys);
        model.CountParameters().Total.Should().Be(countsBefore.Total - countsBefore.Layers[1] - countsBefore.Layers[3]);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = TinyModels.Ids(TinyModels.RandomTokens(8, 4));
        TinyModels.MaxAbsDiff(model.Logits(ids), expected.Logits(ids)).Should().Be(0);
        using var cache = new KvCache(model.Layers.Count);
        using var cached = model.call(new CausalLMInput(ids) { Cache = cache });
        cache.Length.Should().Be(8);
    }

    [Fact]
    public void RemoveLayers_Twice_KeepsKeysContiguousAndLoadsRenumberedWeights()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 4), seed: 1);
        model.RemoveLayers(new[] { 0 });
        model.RemoveLayers(new[] { 2 });
        model.Config.NumHiddenLayers.Should().Be(2);
        model.named_parameters().Select(p => p.name).Where(n => n.Contains("layers", StringComparison.Ordinal))
            .Select(n => n.Split('.')[2]).Distinct().Should().Equal("0", "1");

        using var copy = new LlamaForCausalLM(model.Config);
        copy.LoadWeights(model.NamedWeights());
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = TinyModels.Ids(1, 2, 3);
        TinyModels.MaxAbsDiff(model.Logits(ids), copy.Logits(ids)).Should().Be(0);
    }

    [Fact]
    public void RemoveLayers_All_LeavesEmbeddingNormAndHeadMatchingReference()
    {
        using var model = TinyModels.Random(TinyModels.Config(), seed: 8);
        var config = model.RemoveLayers(new[] { 0, 1, 2 });
        config.NumHiddenLayers.Should().Be(0);
        model.NamedWeights().Keys.Should().BeEquivalentTo("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight");
        var tokens = TinyModels.RandomTokens(5, 1);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var actual = TinyModels.ToRows(model.Logits(TinyModels.Ids(tokens)));
        TinyModels.MaxAbsDiff(actual, new ScalarLlamaReference(config, model.NamedWeights()).Logits(tokens)).Should().BeLessThanOrEqualTo(1e-4);
    }

    [Fact]
    public void RemoveLayers_OutOfRange_ThrowsAndKeepsModel()
    {
        using var model = new LlamaForCausalLM(TinyModels.Config());
        var act = () => model.RemoveLayers(new[] { 1, 3 });
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*3*");
        model.Layers.Should().HaveCount(3);
    }
}
