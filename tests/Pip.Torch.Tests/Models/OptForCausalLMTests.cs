using Pip.Checkpoints;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

public sealed class OptForCausalLMTests
{
    public static TheoryData<string> Cases => new() { "pre-norm", "post-norm-350m", "project-in-out", "untied", "no-bias-no-affine-silu" };

    private static OptConfig CaseConfig(string name) => name switch
    {
        "pre-norm" => TinyOptModels.Config(),
        "post-norm-350m" => TinyOptModels.Config(preNorm: false, wordEmbedProjDim: 16),
        "project-in-out" => TinyOptModels.Config(wordEmbedProjDim: 16),
        "untied" => TinyOptModels.Config(tied: false),
        "no-bias-no-affine-silu" => TinyOptModels.Config(bias: false, affine: false, activation: "silu"),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_Float32_MatchesScalarReference(string name)
    {
        var config = CaseConfig(name);
        using var model = TinyOptModels.Random(config, seed: 7);
        var tokens = TinyModels.RandomTokens(9, seed: 3);
        var reference = new ScalarOptReference(config, model.NamedWeights()).Logits(tokens);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var actual = TinyModels.ToRows(model.Logits(TinyModels.Ids(tokens)));

        TinyModels.MaxAbs(reference).Should().BeGreaterThan(1.0, "the test model must produce non-trivial logits");
        TinyModels.MaxAbsDiff(actual, reference).Should().BeLessThanOrEqualTo(1e-4);
    }

    [Fact]
    public void Forward_ParameterNames_FollowHuggingFaceLayout()
    {
        using var projected = new OptForCausalLM(TinyOptModels.Config(layers: 1, wordEmbedProjDim: 16, tied: false));
        projected.NamedWeights().Keys.Should().Equal(
            "model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight",
            "model.decoder.project_out.weight", "model.decoder.project_in.weight",
            "model.decoder.final_layer_norm.weight", "model.decoder.final_layer_norm.bias",
            "model.decoder.layers.0.self_attn.k_proj.weight", "model.decoder.layers.0.self_attn.k_proj.bias",
            "model.decoder.layers.0.self_attn.v_proj.weight", "model.decoder.layers.0.self_attn.v_proj.bias",
            "model.decoder.layers.0.self_attn.q_proj.weight", "model.decoder.layers.0.self_attn.q_proj.bias",
            "model.decoder.layers.0.self_attn.out_proj.weight", "model.decoder.layers.0.self_attn.out_proj.bias",
            "model.decoder.layers.0.self_attn_layer_norm.weight", "model.decoder.layers.0.self_attn_layer_norm.bias",
            "model.decoder.layers.0.fc1.weight", "model.decoder.layers.0.fc1.bias",
            "model.decoder.layers.0.fc2.weight", "model.decoder.layers.0.fc2.bias",
            "model.decoder.layers.0.final_layer_norm.weight", "model.decoder.layers.0.final_layer_norm.bias",
            "lm_head.weight");
        projected.NamedWeights()["model.decoder.embed_positions.weight"].shape.Should().Equal([64 + 2, 32], "the position table has the offset of 2");

        using var postNorm = new OptForCausalLM(TinyOptModels.Config(layers: 1, preNorm: false));
        postNorm.NamedWeights().Keys.Should().NotContain(k => k.StartsWith("model.decoder.final_layer_norm", StringComparison.Ordinal), "post-norm OPT has no final LayerNorm")
            .And.NotContain("lm_head.weight").And.NotContain(k => k.Contains("project_", StringComparison.Ordinal));
    }

    [Fact]
    public void Forward_PaddedBatch_MatchesEachSequenceAlone()
    {
        using var model = TinyOptModels.Random(TinyOptModels.Config(wordEmbedProjDim: 16), seed: 5);
        int[] a = [3, 9, 14, 27, 33, 41], b = [8, 2, 19, 50];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var aloneA = model.Logits(TinyModels.Ids(a));
        var aloneB = model.Logits(TinyModels.Ids(b));

        // Left padding: positions come from the mask, so b's tokens sit at 0 … 3 although they are at columns 2 … 5.
        var left = TinyModels.Ids([a, [1, 1, .. b]]);
        var leftMask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1 }, [2, 6]);
        using (var output = model.call(new CausalLMInput(left) { AttentionMask = leftMask }))
        {
            TinyModels.MaxAbsDiff(output.Logits[0], aloneA[0]).Should().BeLessThan(1e-5);
            TinyModels.MaxAbsDiff(output.Logits[1, 2..], aloneB[0]).Should().BeLessThan(1e-5);
            output.Logits.isnan().any().item<bool>().Should().BeFalse("fully masked pad rows must not produce NaN");
        }

        // Right padding with a mask.
        var right = TinyModels.Ids([a, [.. b, 1, 1]]);
        var rightMask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }, [2, 6]);
        using (var output = model.call(new CausalLMInput(right) { AttentionMask = rightMask }))
            TinyModels.MaxAbsDiff(output.Logits[1, ..4], aloneB[0]).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void LayerwisePath_EmbedLayersFinalNormHead_EqualsForward()
    {
        ICausalLMModule model = TinyOptModels.Random(TinyOptModels.Config(wordEmbedProjDim: 16), seed: 9);
        using var owner = model;
        var tokens = TinyModels.RandomTokens(7, seed: 4);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = TinyModels.Ids([tokens, tokens.Reverse().ToArray()]);
        using var context = model.CreateLayerContext(7, 2);
        var hidden = model.Embed(ids);
        for (var l = 0; l < model.Layers.Count; l++) hidden = model.ForwardLayer(l, hidden, context);
        TinyModels.MaxAbsDiff(model.LmHead(model.FinalNorm(hidden)), model.Logits(ids)).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Generate_WithCache_MatchesWithoutCache()
    {
        using var model = TinyOptModels.Random(TinyOptModels.Config(preNorm: false), seed: 13);
        int[] prompt = [5, 17, 29];
        model.Generate(prompt, 12).Should().Equal(model.GenerateWithoutCache(prompt, 12));
    }

    [Fact]
    public void RemoveLayers_RenumbersAndUpdatesConfig_LogitsEqualSkippingThem()
    {
        using var model = TinyOptModels.Random(TinyOptModels.Config(layers: 4), seed: 3);
        var tokens = TinyModels.RandomTokens(6, seed: 1);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = TinyModels.Ids(tokens);
        using var context = model.CreateLayerContext(6);
        var hidden = model.Embed(ids);
        foreach (var l in new[] { 0, 2 }) hidden = model.ForwardLayer(l, hidden, context);
        var expected = model.LmHead(model.FinalNorm(hidden));

        var config = model.RemoveLayers([3, 1]);

        config.NumHiddenLayers.Should().Be(2);
        model.NamedWeights().Keys.Where(k => k.Contains(".layers.", StringComparison.Ordinal))
            .Select(k => k.Split('.')[3]).Distinct().Should().Equal("0", "1");
        TinyModels.MaxAbsDiff(model.Logits(ids), expected).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void LoadWeights_OptModelKeysWithoutPrefix_AreAccepted_AndMissingKeysAreNamed()
    {
        var config = TinyOptModels.Config(layers: 1);
        using var source = TinyOptModels.Random(config, seed: 2);
        using var target = new OptForCausalLM(config);
        var bare = source.NamedWeights().ToDictionary(kv => kv.Key["model.".Length..], kv => kv.Value);
        target.LoadWeights(bare);
        using var ids = TinyModels.Ids(1, 2, 3);
        using (no_grad()) TinyModels.Same(target.Logits(ids), source.Logits(ids)).Should().BeTrue();

        var missing = source.NamedWeights().Where(kv => kv.Key != "model.decoder.layers.0.fc1.bias").ToDictionary();
        var act = () => target.LoadWeights(missing);
        act.Should().Throw<ArgumentException>().WithMessage("*Missing (1): model.decoder.layers.0.fc1.bias*");
    }
}
