using Pip.Checkpoints;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

/// <summary>Tiny configurations and models for tests.</summary>
internal static class TinyModels
{
    public static LlamaConfig Config(DecoderFamily family = DecoderFamily.Llama, int layers = 3, int heads = 4, int kvHeads = 2,
        int? headDim = null, bool tied = false, RopeScaling? scaling = null, bool attentionBias = false, bool mlpBias = false) => new()
        {
            Family = family,
            VocabSize = 61,
            HiddenSize = 32,
            IntermediateSize = 48,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? 32 / heads,
            RmsNormEps = 1e-5,
            RopeTheta = 10000,
            RopeScaling = scaling,
            TieWordEmbeddings = tied,
            AttentionBias = attentionBias,
            MlpBias = mlpBias,
        };

    /// <summary>llama3 scaling that, with head_dim 8 and theta 1e4, leaves one frequency alone, smooths one and divides two.</summary>
    public static RopeScaling Llama3Scaling => new("llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 128);

    /// <summary>
    /// Fills every parameter with non-trivial random values (norms around 1, biases nonzero, projections large enough
    /// for peaked attention) so that a mistake anywhere shows in the logits.
    /// </summary>
    public static LlamaForCausalLM Random(LlamaConfig config, long seed, ScalarType dtype = ScalarType.Float32)
    {
        var model = new LlamaForCausalLM(config, dtype);
        using var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            using var scope = NewDisposeScope();
            var r = randn(p.shape, dtype: ScalarType.Float32, generator: g);
            Tensor value;
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) value = 1 + 0.3 * r;
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) value = 0.3 * r;
            else if (name.Contains("embed_tokens", StringComparison.Ordinal)) value = r;
            else value = r * (1.5 / Math.Sqrt(p.shape[1]));
            p.copy_(value);
        }
        return model;
    }

    public static Tensor Ids(params int[] tokens) =>
        tensor(tokens.Select(t => (long)t).ToArray(), new long[] { 1, tokens.Length }, dtype: ScalarType.Int64);

    public static Tensor Ids(int[][] batch) =>
        tensor(batch.SelectMany(r => r).Select(t => (long)t).ToArray(), new long[] { batch.Length, batch[0].Length }, dtype: ScalarType.Int64);

    public static int[] RandomTokens(int count, int seed, int vocab = 61)
    {
        var rng = new System.Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
    }

    /// <summary>Logits of batch row <paramref name="row"/> as [seq][vocab] doubles.</summary>
    public static double[][] ToRows(Tensor logits, int row = 0)
    {
        var t = logits[row].to(ScalarType.Float64).contiguous();
        var seq = (int)t.shape[0];
        var vocab = (int)t.shape[1];
        var flat = t.data<double>().ToArray();
        return Enumerable.Range(0, seq).Select(s => flat.AsSpan(s * vocab, vocab).ToArray()).ToArray();
    }

    public static double MaxAbsDiff(double[][] a, double[][] b)
    {
        a.Length.Should().Be(b.Length);
        double max = 0;
        for (var i = 0; i < a.Length; i++)
        {
            a[i].Length.Should().Be(b[i].Length);
            for (var j = 0; j < a[i].Length; j++) max = Math.Max(max, Math.Abs(a[i][j] - b[i][j]));
        }
        return max;
    }

    public static double MaxAbs(double[][] a) => a.SelectMany(r => r).Max(Math.Abs);

    public static double MaxAbsDiff(Tensor a, Tensor b) =>
        (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();

    /// <summary>Same shape and bitwise-equal values.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
