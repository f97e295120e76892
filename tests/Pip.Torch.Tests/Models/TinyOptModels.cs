using Pip.Checkpoints;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

/// <summary>Tiny OPT configurations and models for tests.</summary>
internal static class TinyOptModels
{
    public static OptConfig Config(int layers = 3, bool preNorm = true, int? wordEmbedProjDim = null, bool tied = true,
        bool bias = true, bool affine = true, string activation = "relu", int vocab = 61, int heads = 4) => new()
        {
            VocabSize = vocab,
            HiddenSize = 32,
            FfnDim = 48,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            HeadDim = 32 / heads,
            WordEmbedProjDim = wordEmbedProjDim ?? 32,
            MaxPositionEmbeddings = 64,
            DoLayerNormBefore = preNorm,
            TieWordEmbeddings = tied,
            EnableBias = bias,
            LayerNormElementwiseAffine = affine,
            ActivationFunction = activation,
        };

    /// <summary>Fills every parameter with non-trivial random values (LayerNorm weights around 1, nonzero biases).</summary>
    public static OptForCausalLM Random(OptConfig config, long seed, ScalarType dtype = ScalarType.Float32)
    {
        var model = new OptForCausalLM(config, dtype);
        using var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            using var scope = NewDisposeScope();
            var r = randn(p.shape, dtype: ScalarType.Float32, generator: g);
            Tensor value;
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) value = 1 + 0.3 * r;
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) value = 0.3 * r;
            else if (name.Contains("embed_", StringComparison.Ordinal)) value = r;
            else value = r * (1.5 / Math.Sqrt(p.shape[1]));
            p.copy_(value);
        }
        return model;
    }
}
