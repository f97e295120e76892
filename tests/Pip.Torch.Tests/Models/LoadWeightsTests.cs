using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

public sealed class LoadWeightsTests
{
    [Fact]
    public void LoadWeights_RoundTripIntoOtherDtype_CopiesValues()
    {
        var config = TinyModels.Config(tied: true);
        using var source = TinyModels.Random(config, seed: 1);
        using var target = new LlamaForCausalLM(config, ScalarType.BFloat16);
        target.LoadWeights(source.NamedWeights());
        using var scope = NewDisposeScope();
        foreach (var (name, p) in target.NamedWeights())
        {
            p.dtype.Should().Be(ScalarType.BFloat16);
            TinyModels.Same(p, source.NamedWeights()[name].to(ScalarType.BFloat16)).Should().BeTrue(name);
            p.requires_grad.Should().BeTrue();
        }
    }

    [Fact]
    public void LoadWeights_MissingUnexpectedAndMisshapen_ListsAllProblems()
    {
        var config = TinyModels.Config();
        using var model = new LlamaForCausalLM(config);
        using var scope = NewDisposeScope();
        var weights = model.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
        weights.Remove("model.layers.1.mlp.up_proj.weight");
        weights["model.layers.7.mlp.up_proj.weight"] = zeros(48, 32);
        weights["model.norm.weight"] = zeros(31);

        var act = () => model.LoadWeights(weights);
        act.Should().Throw<ArgumentException>()
            .WithMessage("*Missing (1): model.layers.1.mlp.up_proj.weight*")
            .WithMessage("*Unexpected (1): model.layers.7.mlp.up_proj.weight*")
            .WithMessage("*model.norm.weight: checkpoint [31], model [32]*");
    }

    [Fact]
    public void LoadWeights_TiedModelWithStoredHeadOrInvFreq_IgnoresThem()
    {
        var config = TinyModels.Config(tied: true);
        using var source = TinyModels.Random(config, seed: 2);
        using var model = new LlamaForCausalLM(config);
        using var scope = NewDisposeScope();
        var weights = source.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"];
        weights["model.layers.0.self_attn.rotary_emb.inv_freq"] = zeros(4);
        model.LoadWeights(weights);
        TinyModels.Same(model.NamedWeights()["model.embed_tokens.weight"], weights["model.embed_tokens.weight"]).Should().BeTrue();

        using var untied = new LlamaForCausalLM(config with { TieWordEmbeddings = false });
        weights.Remove("lm_head.weight");
        var act = () => untied.LoadWeights(weights);
        act.Should().Throw<ArgumentException>().WithMessage("*Missing (1): lm_head.weight*");
    }
}
