using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning.Width;

public sealed class WidthPrunerTests
{
    /// <summary>Float32 rounding of the same function computed with fewer (zero) terms.</summary>
    private const double Tolerance = 2e-5;

    private static readonly int[] Tokens = TinyModels.RandomTokens(9, 17);

    [Theory]
    [InlineData(DecoderFamily.Llama, false)]
    [InlineData(DecoderFamily.Llama, true)]
    [InlineData(DecoderFamily.Qwen2, true)]
    [InlineData(DecoderFamily.Mistral, false)]
    public void PruneHeads_OneGroup_EqualsOriginalWithItsHeadsMaskedInOProj(DecoderFamily family, bool attentionBias)
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(family, attentionBias: attentionBias), seed: 5);
        using var masked = WidthFixtures.Copy(model);
        using var scope = NewDisposeScope();
        var original = WidthFixtures.Logits(model, Tokens);
        WidthFixtures.MaskGroups(masked, 1, [1]);

        var config = model.PruneHeads(1, [1]);

        var pruned = WidthFixtures.Logits(model, Tokens);
        TinyModels.MaxAbsDiff(pruned, WidthFixtures.Logits(masked, Tokens)).Should().BeLessThanOrEqualTo(Tolerance);
        TinyModels.MaxAbsDiff(pruned, original).Should().BeGreaterThan(1e-2, "removing two of six heads must change the output");
        config.ShapeOf(1).Should().Be(new LayerShape(4, 2, 48));
        config.ShapeOf(0).Should().Be(new LayerShape(6, 3, 48));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PruneChannels_SomeChannels_EqualsOriginalWithDownProjColumnsMasked(bool mlpBias)
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(mlpBias: mlpBias), seed: 6);
        using var masked = WidthFixtures.Copy(model);
        using var scope = NewDisposeScope();
        var original = WidthFixtures.Logits(model, Tokens);
        int[] channels = [0, 7, 8, 30, 47];
        WidthFixtures.MaskChannels(masked, 2, channels);

        var config = model.PruneChannels(2, channels);

        var pruned = WidthFixtures.Logits(model, Tokens);
        TinyModels.MaxAbsDiff(pruned, WidthFixtures.Logits(masked, Tokens)).Should().BeLessThanOrEqualTo(Tolerance);
        TinyModels.MaxAbsDiff(pruned, original).Should().BeGreaterThan(1e-2);
        config.ShapeOf(2).IntermediateSize.Should().Be(43);
        model.Layers[2].Mlp.IntermediateSize.Should().Be(43);
    }

    [Theory]
    [InlineData(DecoderFamily.Llama, true)]
    [InlineData(DecoderFamily.Qwen2, false)]
    public void Prune_PlanOverSeveralLayers_EqualsMaskedOriginalAndScalarReference(DecoderFamily family, bool tied)
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(family, attentionBias: true, mlpBias: true, tied: tied), seed: 7);
        using var masked = WidthFixtures.Copy(model);
        var plan = new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0], [2] = [2, 1] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [3, 4, 5], [1] = Enumerable.Range(0, 40).ToArray() },
        };
        WidthFixtures.Mask(masked, plan);

        var config = model.Prune(plan);

        using var scope = NewDisposeScope();
        var pruned = WidthFixtures.Logits(model, Tokens);
        TinyModels.MaxAbsDiff(pruned, WidthFixtures.Logits(masked, Tokens)).Should().BeLessThanOrEqualTo(Tolerance);
        var reference = new ScalarLlamaReference(config, model.NamedWeights()).Logits(Tokens);
        TinyModels.MaxAbsDiff(TinyModels.ToRows(pruned), reference).Should().BeLessThanOrEqualTo(1e-4);
        config.LayerShapes.Should().Equal(new LayerShape(4, 2, 45), new LayerShape(6, 3, 8), new LayerShape(2, 1, 48));
    }

    [Fact]
    public void PruneHeads_GqaGroup_RemovesExactlyItsQueryHeadsKeyValueHeadAndOProjColumns()
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(DecoderFamily.Qwen2, attentionBias: true), seed: 8);
        var before = model.NamedWeights().ToDictionary(p => p.Key, p => p.Value.detach().clone());
        const string p = "model.layers.1.self_attn.";
        const int d = 8;

        WidthPruner.QueryHeadsOfGroup(6, 3, 1).Should().Equal(2, 3);
        model.PruneHeads(1, [1]);

        using var scope = NewDisposeScope();
        Tensor Rows(Tensor t, params int[] heads) => cat(heads.Select(h => t.narrow(0, h * d, d)).ToArray(), 0);
        Tensor Columns(Tensor t, params int[] heads) => cat(heads.Select(h => t.narrow(1, h * d, d)).ToArray(), 1);
        var after = model.NamedWeights();
        TinyModels.Same(after[p + "q_proj.weight"], Rows(before[p + "q_proj.weight"], 0, 1, 4, 5)).Should().BeTrue();
        TinyModels.Same(after[p + "q_proj.bias"], Rows(before[p + "q_proj.bias"], 0, 1, 4, 5)).Should().BeTrue();
        foreach (var name in new[] { "k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias" })
            TinyModels.Same(after[p + name], Rows(before[p + name], 0, 2)).Should().BeTrue(name);
        TinyModels.Same(after[p + "o_proj.weight"], Columns(before[p + "o_proj.weight"], 0, 1, 4, 5)).Should().BeTrue();
        after.Keys.Should().NotContain(p + "o_proj.bias", "Qwen2 has no o_proj bias");

        var attention = model.Layers[1].SelfAttn;
        (attention.NumHeads, attention.NumKeyValueHeads, attention.GroupSize).Should().Be((4L, 2L, 2L));
        foreach (var (name, t) in after.Where(w => !w.Key.StartsWith("model.layers.1.self_attn.", StringComparison.Ordinal)))
            TinyModels.Same(t, before[name]).Should().BeTrue($"{name} is not part of the pruned attention");
        foreach (var t in before.Values) t.Dispose();
    }

    [Fact]
    public void PruneChannels_RemovesGateAndUpRowsAndDownColumnsOnly()
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(mlpBias: true), seed: 9);
        var before = model.NamedWeights().ToDictionary(p => p.Key, p => p.Value.detach().clone());
        var countBefore = model.ParameterCount;
        const string p = "model.layers.0.mlp.";
        int[] kept = Enumerable.Range(0, 48).Where(c => c is not (2 or 11 or 40)).ToArray();
        model.NamedWeights()[p + "gate_proj.weight"].requires_grad_(false);

        model.PruneChannels(0, [40, 2, 11, 2]);

        using var scope = NewDisposeScope();
        var index = tensor(kept.Select(c => (long)c).ToArray());
        var after = model.NamedWeights();
        foreach (var name in new[] { "gate_proj.weight", "gate_proj.bias", "up_proj.weight", "up_proj.bias" })
            TinyModels.Same(after[p + name], before[p + name].index_select(0, index)).Should().BeTrue(name);
        TinyModels.Same(after[p + "down_proj.weight"], before[p + "down_proj.weight"].index_select(1, index)).Should().BeTrue();
        TinyModels.Same(after[p + "down_proj.bias"], before[p + "down_proj.bias"]).Should().BeTrue();
        // three channels: a row of gate and up (32 weights + 1 bias each) and a column of down (32)
        model.ParameterCount.Should().Be(countBefore - 3 * (33 + 33 + 32));
        after[p + "gate_proj.weight"].requires_grad.Should().BeFalse("a frozen parameter stays frozen");
        after[p + "up_proj.weight"].requires_grad.Should().BeTrue();
        foreach (var t in before.Values) t.Dispose();
    }

    [Fact]
    public void Prune_SameAmountInEveryLayer_GivesStandardConfigThatBuildsTheSameShapes()
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(), seed: 10);
        var plan = new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0], [1] = [2], [2] = [1] },
            Channels = Enumerable.Range(0, 3).ToDictionary(l => l, l => (IReadOnlyCollection<int>)Enumerable.Range(l, 16).ToArray()),
        };

        var config = model.Prune(plan);

        config.LayerShapes.Should().BeNull();
        config.IsHeterogeneous.Should().BeFalse();
        (config.NumAttentionHeads, config.NumKeyValueHeads, config.IntermediateSize, config.HeadDim).Should().Be((4, 2, 32, 8));
        model.Config.Should().BeSameAs(config);
        using var rebuilt = new LlamaForCausalLM(config);
        rebuilt.NamedWeights().ToDictionary(w => w.Key, w => w.Value.shape)
            .Should().BeEquivalentTo(model.NamedWeights().ToDictionary(w => w.Key, w => w.Value.shape));
        rebuilt.LoadWeights(model.NamedWeights());
    }

    [Fact]
    public void Prune_DifferentAmounts_ConfigListsEachLayerShapeWithMostCommonAsGlobal()
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(layers: 4), seed: 11);

        model.PruneHeads(2, [0]);
        var config = model.PruneChannels(3, [1, 2]);

        config.IsHeterogeneous.Should().BeTrue();
        config.GlobalShape.Should().Be(new LayerShape(6, 3, 48));
        config.LayerShapes.Should().Equal(model.Layers.Select(l => l.Shape));
        config.LayerShapes.Should().Equal(new LayerShape(6, 3, 48), new LayerShape(6, 3, 48), new LayerShape(4, 2, 48), new LayerShape(6, 3, 46));
        using var rebuilt = new LlamaForCausalLM(config);
        rebuilt.LoadWeights(model.NamedWeights());
        using var scope = NewDisposeScope();
        TinyModels.MaxAbsDiff(WidthFixtures.Logits(rebuilt, Tokens), WidthFixtures.Logits(model, Tokens)).Should().Be(0);
    }

    [Fact]
    public void PruneHeads_Twice_RenumbersGroupsLikeRemovingBothAtOnce()
    {
        using var stepwise = TinyModels.Random(WidthFixtures.GqaConfig(), seed: 12);
        using var atOnce = WidthFixtures.Copy(stepwise);

        stepwise.PruneHeads(0, [0]);
        stepwise.PruneHeads(0, [1]); // old group 2
        atOnce.PruneHeads(0, [2, 0]);

        using var scope = NewDisposeScope();
        foreach (var (name, t) in atOnce.NamedWeights())
            TinyModels.Same(stepwise.NamedWeights()[name], t).Should().BeTrue(name);
    }

    [Fact]
    public void PruneHeads_EmptyOrDuplicates_NoOpOrIgnored()
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(), seed: 13);
        using var single = WidthFixtures.Copy(model);
        var config = model.Config;

        model.PruneHeads(0, []).Should().Be(config);
        model.PruneChannels(0, []);
        model.Layers[0].Shape.Should().Be(new LayerShape(6, 3, 48));

        model.PruneHeads(0, [1, 1, 1]);
        single.PruneHeads(0, [1]);
        using var scope = NewDisposeScope();
        TinyModels.MaxAbsDiff(WidthFixtures.Logits(model, Tokens), WidthFixtures.Logits(single, Tokens)).Should().Be(0);
    }

    public static TheoryData<WidthPruningPlan, Type, string> InvalidPlans => new()
    {
        { new WidthPruningPlan { KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [3] = [0] } }, typeof(ArgumentOutOfRangeException), "*Layer 3*3 layers*" },
        { new WidthPruningPlan { KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [0], [1] = [3, -1] } }, typeof(ArgumentOutOfRangeException), "*Layer 1*-1, 3*" },
        { new WidthPruningPlan { KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [0, 1, 2] } }, typeof(ArgumentException), "*Layer 1*all 3*" },
        { new WidthPruningPlan { KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [1] }, Channels = new Dictionary<int, IReadOnlyCollection<int>> { [2] = [48] } }, typeof(ArgumentOutOfRangeException), "*Layer 2*48*" },
        { new WidthPruningPlan { Channels = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [1], [2] = Enumerable.Range(0, 48).ToArray() } }, typeof(ArgumentException), "*Layer 2*all 48*" },
    };

    [Theory]
    [MemberData(nameof(InvalidPlans))]
    public void Prune_InvalidEntry_ThrowsAndLeavesModelUnchanged(WidthPruningPlan plan, Type exception, string message)
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(), seed: 14);
        using var copy = WidthFixtures.Copy(model);
        var config = model.Config;

        var act = () => model.Prune(plan);

        act.Should().Throw<ArgumentException>().Where(e => e.GetType() == exception).WithMessage(message);
        model.Config.Should().BeSameAs(config);
        using var scope = NewDisposeScope();
        foreach (var (name, t) in copy.NamedWeights())
            TinyModels.Same(model.NamedWeights()[name], t).Should().BeTrue(name);
    }

    [Fact]
    public void Forward_WidthPrunedWithCacheInChunks_EqualsFullForward()
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(), seed: 15);
        model.PruneHeads(0, [1]);
        model.PruneHeads(2, [0, 2]);
        model.PruneChannels(1, [5, 6]);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var full = model.Logits(TinyModels.Ids(Tokens));
        using var cache = new KvCache(model.Layers.Count);
        foreach (var (start, length) in new[] { (0, 5), (5, 1), (6, 3) })
        {
            using var output = model.call(new CausalLMInput(TinyModels.Ids(Tokens[start..(start + length)])) { Cache = cache });
            TinyModels.MaxAbsDiff(output.Logits, full.narrow(1, start, length)).Should().BeLessThanOrEqualTo(1e-4);
        }
        cache[2].Keys!.shape[1].Should().Be(1);
    }

    [Fact]
    public void RemoveLayers_AfterNonUniformWidthPruning_ShapesFollowTheKeptLayers()
    {
        using var model = TinyModels.Random(WidthFixtures.GqaConfig(layers: 4), seed: 16);
        model.PruneHeads(1, [0]);
        model.PruneChannels(2, [0]);

        var config = model.RemoveLayers([0]);
        config.LayerShapes.Should().Equal(new LayerShape(4, 2, 48), new LayerShape(6, 3, 47), new LayerShape(6, 3, 48));

        config = model.RemoveLayers([0, 1]);
        config.LayerShapes.Should().BeNull("one layer is always uniform");
        config.GlobalShape.Should().Be(new LayerShape(6, 3, 48));
        using var rebuilt = new LlamaForCausalLM(config);
        rebuilt.LoadWeights(model.NamedWeights());
    }

    [Fact]
    public void Constructor_ConfigWithLayerShapes_BuildsEachLayerItsSize()
    {
        var config = WidthFixtures.GqaConfig() with { LayerShapes = [new(6, 3, 48), new(2, 1, 20), new(6, 6, 8)] };

        using var model = new LlamaForCausalLM(config);

        model.Layers.Select(l => l.Shape).Should().Equal(config.LayerShapes);
        model.NamedWeights()["model.layers.1.self_attn.q_proj.weight"].shape.Should().Equal(16, 32);
        model.NamedWeights()["model.layers.1.self_attn.o_proj.weight"].shape.Should().Equal(32, 16);
        model.NamedWeights()["model.layers.2.self_attn.k_proj.weight"].shape.Should().Equal(48, 32);
        model.NamedWeights()["model.layers.2.mlp.down_proj.weight"].shape.Should().Equal(32, 8);
    }

    [Fact]
    public void Constructor_LayerShapesOfWrongCountOrInvalid_Throws()
    {
        var config = WidthFixtures.GqaConfig();
        var tooFew = () => new LlamaForCausalLM(config with { LayerShapes = [new(6, 3, 48)] });
        tooFew.Should().Throw<ArgumentException>().WithMessage("*1 per-layer shapes*3 layers*");
        var badHeads = () => new LlamaForCausalLM(config with { LayerShapes = [new(6, 3, 48), new(6, 4, 48), new(6, 3, 48)] });
        badHeads.Should().Throw<ArgumentException>().WithMessage("*layer 1*");
    }

    [Fact]
    public void LoadWeights_UnprunedWeightsIntoPerLayerModel_ThrowsNamingTheMismatch()
    {
        using var full = TinyModels.Random(WidthFixtures.GqaConfig(), seed: 17);
        using var small = new LlamaForCausalLM(full.Config with { LayerShapes = [new(6, 3, 48), new(6, 3, 40), new(6, 3, 48)] });

        var act = () => small.LoadWeights(full.NamedWeights());

        act.Should().Throw<ArgumentException>().WithMessage("*per-layer shapes*model.layers.1.mlp.gate_proj.weight: checkpoint [48, 32], model [40, 32]*");
    }
}
