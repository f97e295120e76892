using Pip.Checkpoints;
using Pip.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

public sealed class LlamaForCausalLMTests
{
    public static TheoryData<string> Cases => new()
    {
        "gqa", "mha", "tied", "qwen2-bias", "llama-attention-and-mlp-bias", "head-dim-12", "llama3-rope", "mistral",
    };

    private static LlamaConfig CaseConfig(string name) => name switch
    {
        "gqa" => TinyModels.Config(),
        "mha" => TinyModels.Config(kvHeads: 4),
        "tied" => TinyModels.Config(tied: true),
        "qwen2-bias" => TinyModels.Config(DecoderFamily.Qwen2),
        "llama-attention-and-mlp-bias" => TinyModels.Config(attentionBias: true, mlpBias: true),
        "head-dim-12" => TinyModels.Config(headDim: 12),
        "llama3-rope" => TinyModels.Config(scaling: TinyModels.Llama3Scaling),
        "mistral" => TinyModels.Config(DecoderFamily.Mistral, kvHeads: 1),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_Float32_MatchesScalarReference(string name)
    {
        var config = CaseConfig(name);
        using var model = TinyModels.Random(config, seed: 7);
        var tokens = TinyModels.RandomTokens(9, seed: 3);
        var reference = new ScalarLlamaReference(config, model.NamedWeights()).Logits(tokens);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var actual = TinyModels.ToRows(model.Logits(TinyModels.Ids(tokens)));

        TinyModels.MaxAbs(reference).Should().BeGreaterThan(1.0, "the test model must produce non-trivial logits");
        TinyModels.MaxAbsDiff(actual, reference).Should().BeLessThanOrEqualTo(1e-4);
    }

    [Fact]
    public void Forward_ParameterNames_FollowHuggingFaceLayout()
    {
        using var qwen = new LlamaForCausalLM(TinyModels.Config(DecoderFamily.Qwen2, layers: 1));
        qwen.NamedWeights().Keys.Should().BeEquivalentTo(
            "model.embed_tokens.weight",
            "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.bias",
            "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.k_proj.bias",
            "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.v_proj.bias",
            "model.layers.0.self_attn.o_proj.weight",
            "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
            "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
            "model.norm.weight", "lm_head.weight");

        using var tied = new LlamaForCausalLM(TinyModels.Config(layers: 1, tied: true));
        tied.NamedWeights().Keys.Should().NotContain("lm_head.weight").And.HaveCount(11);
        tied.LmHeadLinear.Should().BeNull();
    }

    [Fact]
    public void Forward_Llama3Scaling_ChangesLogitsAndMatchesReference()
    {
        var plain = TinyModels.Config();
        var scaled = plain with { RopeScaling = TinyModels.Llama3Scaling };
        using var model = TinyModels.Random(plain, seed: 11);
        using var scaledModel = new LlamaForCausalLM(scaled);
        scaledModel.LoadWeights(model.NamedWeights());
        var tokens = TinyModels.RandomTokens(20, seed: 5);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = TinyModels.ToRows(model.Logits(TinyModels.Ids(tokens)));
        var b = TinyModels.ToRows(scaledModel.Logits(TinyModels.Ids(tokens)));
        TinyModels.MaxAbsDiff(a, b).Should().BeGreaterThan(1e-2, "llama3 scaling changes low frequencies");
        TinyModels.MaxAbsDiff(b, new ScalarLlamaReference(scaled, scaledModel.NamedWeights()).Logits(tokens)).Should().BeLessThanOrEqualTo(1e-4);
    }

    [Fact]
    public void Forward_BatchAndPositionIds_MatchReferencePerRow()
    {
        var config = TinyModels.Config();
        using var model = TinyModels.Random(config, seed: 2);
        var reference = new ScalarLlamaReference(config, model.NamedWeights());
        var rows = new[] { TinyModels.RandomTokens(6, 1), TinyModels.RandomTokens(6, 2) };
        var positions = new long[] { 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4, 5 };

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var output = model.call(new CausalLMInput(TinyModels.Ids(rows)) { PositionIds = tensor(positions, new long[] { 2, 6 }) });

        TinyModels.MaxAbsDiff(TinyModels.ToRows(output.Logits, 0), reference.Logits(rows[0], positions[..6])).Should().BeLessThanOrEqualTo(1e-4);
        TinyModels.MaxAbsDiff(TinyModels.ToRows(output.Logits, 1), reference.Logits(rows[1])).Should().BeLessThanOrEqualTo(1e-4);
    }

    [Fact]
    public void Forward_LayerByLayerPieces_EqualFullForwardAndHiddenStates()
    {
        var config = TinyModels.Config();
        using var model = TinyModels.Random(config, seed: 4);
        var tokens = TinyModels.RandomTokens(7, 9);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = TinyModels.Ids(tokens);
        using var output = model.call(new CausalLMInput(ids) { OutputHiddenStates = true });
        output.HiddenStates.Should().HaveCount(config.NumHiddenLayers + 1);

        var hidden = model.Embed(ids);
        using var rope = model.ComputeRotary(tokens.Length);
        for (var i = 0; i < model.Layers.Count; i++)
        {
            TinyModels.MaxAbsDiff(hidden, output.HiddenStates![i]).Should().Be(0);
            hidden = model.Layers[i].call(hidden, rope);
        }
        TinyModels.MaxAbsDiff(hidden, output.HiddenStates![^1]).Should().Be(0);
        TinyModels.MaxAbsDiff(model.LmHead(model.FinalNorm(hidden)), output.Logits).Should().Be(0);
    }

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    public void Forward_BFloat16_AgreesWithFloat32WithinBFloat16Tolerance(int seed)
    {
        var config = TinyModels.Config();
        using var bf16 = LlamaForCausalLM.CreateRandom(config, seed, ScalarType.BFloat16, std: 0.1);
        // The float32 model holds exactly the bf16-rounded weights, so only activation rounding differs.
        using var fp32 = new LlamaForCausalLM(config);
        fp32.LoadWeights(bf16.NamedWeights());
        var tokens = TinyModels.RandomTokens(10, 8);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var low = bf16.Logits(TinyModels.Ids(tokens));
        var high = fp32.Logits(TinyModels.Ids(tokens));
        low.dtype.Should().Be(ScalarType.BFloat16);
        var diff = low.to(ScalarType.Float32) - high;
        var rms = high.square().mean().sqrt().item<float>();
        var rmsDiff = diff.square().mean().sqrt().item<float>();
        rms.Should().BeGreaterThan(0.1f);
        rmsDiff.Should().BeGreaterThan(0, "the bf16 model must compute in bf16");
        // bf16 keeps 8 significant bits (relative step 0.4%); three layers stay within a few steps.
        rmsDiff.Should().BeLessThanOrEqualTo(0.02f * rms);
        diff.abs().max().item<float>().Should().BeLessThanOrEqualTo(0.05f * high.abs().max().item<float>());
    }

    [Fact]
    public void Forward_Float16_AgreesWithFloat32()
    {
        var config = TinyModels.Config();
        using var fp16 = TinyModels.Random(config, seed: 21, ScalarType.Float16);
        using var fp32 = new LlamaForCausalLM(config);
        fp32.LoadWeights(fp16.NamedWeights());
        var tokens = TinyModels.RandomTokens(10, 8);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var low = fp16.Logits(TinyModels.Ids(tokens));
        var high = fp32.Logits(TinyModels.Ids(tokens));
        low.dtype.Should().Be(ScalarType.Float16);
        TinyModels.MaxAbsDiff(low, high).Should().BeLessThanOrEqualTo(0.01 * high.abs().max().item<float>());
    }

    [Fact]
    public void To_BFloat16_ConvertsEveryParameterAndStillRuns()
    {
        var config = TinyModels.Config(DecoderFamily.Qwen2, tied: true);
        using var model = TinyModels.Random(config, seed: 3);
        using var expected = new LlamaForCausalLM(config, ScalarType.BFloat16);
        expected.LoadWeights(model.NamedWeights());

        model.to(ScalarType.BFloat16);

        model.Dtype.Should().Be(ScalarType.BFloat16);
        model.NamedWeights().Values.Should().OnlyContain(p => p.dtype == ScalarType.BFloat16);
        model.NamedWeights().Should().HaveCount(expected.NamedWeights().Count);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = TinyModels.Ids(TinyModels.RandomTokens(6, 2));
        TinyModels.MaxAbsDiff(model.Logits(ids), expected.Logits(ids)).Should().Be(0);
    }

    [Fact]
    public void CreateRandom_SameSeed_SameWeightsHuggingFaceInitAndGlobalStateKept()
    {
        var config = TinyModels.Config(DecoderFamily.Qwen2);
        var defaultType = get_default_dtype();
        using var a = LlamaForCausalLM.CreateRandom(config, seed: 5, ScalarType.BFloat16);
        using var b = LlamaForCausalLM.CreateRandom(config, seed: 5, ScalarType.BFloat16);
        using var c = LlamaForCausalLM.CreateRandom(config, seed: 6, ScalarType.BFloat16);
        get_default_dtype().Should().Be(defaultType);

        using var scope = NewDisposeScope();
        foreach (var (name, p) in a.NamedWeights())
        {
            p.dtype.Should().Be(ScalarType.BFloat16);
            TinyModels.Same(p, b.NamedWeights()[name]).Should().BeTrue(name);
            var values = p.to(ScalarType.Float32);
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                values.eq(1).all().item<bool>().Should().BeTrue(name);
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
                values.eq(0).all().item<bool>().Should().BeTrue(name);
            else
            {
                TinyModels.Same(p, c.NamedWeights()[name]).Should().BeFalse(name);
                values.std().item<float>().Should().BeInRange(0.015f, 0.025f, name);
            }
        }
    }

    [Fact]
    public void CountParameters_TiedAndUntied_MatchFormula()
    {
        foreach (var tied in new[] { false, true })
        {
            var config = TinyModels.Config(DecoderFamily.Qwen2, tied: tied, headDim: 12);
            using var model = new LlamaForCausalLM(config);
            long h = 32, v = 61, inter = 48, q = 4 * 12, kv = 2 * 12;
            var layer = h * q + q + 2 * (h * kv + kv) + q * h + 3 * h * inter + 2 * h;
            var counts = model.CountParameters();
            counts.Layers.Should().Equal(layer, layer, layer);
            counts.Embedding.Should().Be(v * h);
            counts.LmHead.Should().Be(tied ? 0 : v * h);
            counts.FinalNorm.Should().Be(h);
            counts.Total.Should().Be(v * h * (tied ? 1 : 2) + 3 * layer + h);
            model.ParameterCount.Should().Be(counts.Total);
        }
    }

    [Fact]
    public void Constructor_UnsupportedConfig_Throws()
    {
        var act = () => new LlamaForCausalLM(TinyModels.Config(heads: 4, kvHeads: 3));
        act.Should().Throw<ArgumentException>().WithMessage("*multiple of num_key_value_heads*");
        var yarn = () => new LlamaForCausalLM(TinyModels.Config(scaling: new RopeScaling("yarn", 4, 1, 4, 128)));
        yarn.Should().Throw<NotSupportedException>().WithMessage("*yarn*");
        var int8 = () => new LlamaForCausalLM(TinyModels.Config(), ScalarType.Int8);
        int8.Should().Throw<ArgumentException>();
    }
}
