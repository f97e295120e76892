using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning.Width;

/// <summary>Helpers for width-pruning tests: copies of a model, and the masking reference.</summary>
internal static class WidthFixtures
{
    /// <summary>Six query heads sharing three key/value heads (G = 2), head_dim 8, hidden 32, MLP 48.</summary>
    public static LlamaConfig GqaConfig(DecoderFamily family = DecoderFamily.Llama, int layers = 3, bool attentionBias = false, bool mlpBias = false, bool tied = false) =>
        TinyModels.Config(family, layers: layers, heads: 6, kvHeads: 3, headDim: 8, attentionBias: attentionBias, mlpBias: mlpBias, tied: tied);

    /// <summary>An independent copy of a model (same configuration and weights).</summary>
    public static LlamaForCausalLM Copy(LlamaForCausalLM model)
    {
        var copy = new LlamaForCausalLM(model.Config, model.Dtype);
        copy.LoadWeights(model.NamedWeights());
        return copy;
    }

    /// <summary>
    /// Zeroes the o_proj input columns of the query heads of the given key/value groups: the attention of those heads
    /// then contributes nothing, which is what removing them does.
    /// </summary>
    public static void MaskGroups(LlamaForCausalLM model, int layer, IEnumerable<int> groups)
    {
        var attention = model.Layers[layer].SelfAttn;
        var d = attention.HeadDim;
        using var noGrad = no_grad();
        foreach (var g in groups)
        {
            foreach (var h in WidthPruner.QueryHeadsOfGroup((int)attention.NumHeads, (int)attention.NumKeyValueHeads, g))
            {
                using var columns = attention.OProj.weight!.narrow(1, h * d, d);
                columns.zero_();
            }
        }
    }

    /// <summary>Zeroes the down_proj columns of the given channels.</summary>
    public static void MaskChannels(LlamaForCausalLM model, int layer, IEnumerable<int> channels)
    {
        using var noGrad = no_grad();
        foreach (var c in channels)
        {
            using var column = model.Layers[layer].Mlp.DownProj.weight!.narrow(1, c, 1);
            column.zero_();
        }
    }

    /// <summary>Masks a whole plan on a model (indices as in the plan).</summary>
    public static void Mask(LlamaForCausalLM model, WidthPruningPlan plan)
    {
        foreach (var (layer, groups) in plan.KeyValueGroups) MaskGroups(model, layer, groups);
        foreach (var (layer, channels) in plan.Channels) MaskChannels(model, layer, channels);
    }

    public static Tensor Logits(LlamaForCausalLM model, int[] tokens)
    {
        using var noGrad = no_grad();
        return model.Logits(TinyModels.Ids(tokens));
    }
}
