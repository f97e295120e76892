using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Tests.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning.Width;

/// <summary>
/// Slow, independent references for the width metrics: gradients from one full <c>loss.backward()</c>, projection
/// inputs from a hand-written forward pass (attention with an explicit causal mask, not SDPA), and unit scores from
/// plain loops in double.
/// </summary>
internal static class WidthReference
{
    /// <summary>A GQA model (6 heads on 3 key/value heads, head_dim 8, hidden 32, MLP 48) with the byte tokenizer.</summary>
    public static TorchCausalLM Model(long seed, int layers = 3, DecoderFamily family = DecoderFamily.Llama) =>
        new(TinyModels.Random(WidthFixtures.GqaConfig(family, layers) with { VocabSize = 258 }, seed), PruningFixtures.Tokenizer);

    public static IReadOnlyList<int[]> Sequences(TorchCausalLM model) => [.. PruningFixtures.Texts.Select(t => model.Tokenize(t).ToArray())];

    public static WidthImportanceRequest Request(TorchCausalLM model, WidthUnits units = WidthUnits.Both, params int[] layers) =>
        new(model, PruningFixtures.Samples, units, layers.Length == 0 ? [.. Enumerable.Range(0, model.LayerCount)] : layers, Seed: 3);

    /// <summary>The projections of a kind with their axis: rows for q/k/v/gate/up, columns for o/down.</summary>
    public static (Linear Linear, bool Rows)[] Parts(LlamaDecoderLayer layer, WidthUnitKind kind) => kind == WidthUnitKind.Heads
        ? [(layer.SelfAttn.QProj, true), (layer.SelfAttn.KProj, true), (layer.SelfAttn.VProj, true), (layer.SelfAttn.OProj, false)]
        : [(layer.Mlp.GateProj, true), (layer.Mlp.UpProj, true), (layer.Mlp.DownProj, false)];

    public static double[,] ToArray(Tensor t)
    {
        using var d = t.detach().to_type(ScalarType.Float64).cpu();
        var flat = d.data<double>().ToArray();
        int rows = (int)d.shape[0], cols = (int)d.shape[1];
        var result = new double[rows, cols];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) result[i, j] = flat[i * cols + j];
        return result;
    }

    /// <summary>Per unit, the sum over its rows (or columns) of Σ|s| (element-wise) or |Σ s| (vector-wise) of an element salience.</summary>
    public static double[] UnitSums(int rows, int cols, Func<int, int, double> salience, bool byRows, int units, bool vectorwise)
    {
        int lines = byRows ? rows : cols, across = byRows ? cols : rows, width = lines / units;
        var result = new double[units];
        for (int line = 0; line < lines; line++)
        {
            double sum = 0;
            for (int k = 0; k < across; k++)
            {
                double s = byRows ? salience(line, k) : salience(k, line);
                sum += vectorwise ? s : Math.Abs(s);
            }

            result[line / width] += Math.Abs(sum);
        }

        return result;
    }

    /// <summary>Reduces parts[p][u] over p by hand.</summary>
    public static double[] Reduce(IReadOnlyList<double[]> parts, WidthGroupReduction reduction) =>
        [.. Enumerable.Range(0, parts[0].Length).Select(u =>
        {
            var values = parts.Select(p => p[u]).ToArray();
            return reduction switch
            {
                WidthGroupReduction.Sum => values.Sum(),
                WidthGroupReduction.Mean => values.Average(),
                WidthGroupReduction.Max => values.Max(),
                _ => values.Sum(Math.Log),
            };
        })];

    /// <summary>
    /// Gradients of the mean over sequences of each sequence's mean next-token cross-entropy, from one ordinary
    /// backward pass through the whole model (per sequence, summed), for every projection weight (by handle).
    /// </summary>
    public static Dictionary<IntPtr, double[,]> Gradients(LlamaForCausalLM model, IReadOnlyList<int[]> sequences)
    {
        model.zero_grad();
        foreach (var s in sequences)
        {
            using var scope = NewDisposeScope();
            var ids = TinyModels.Ids(s);
            var loss = nn.functional.cross_entropy(model.Logits(ids)[0, ..^1], ids[0, 1..]) / sequences.Count;
            loss.backward();
        }

        var result = model.Layers.SelectMany(l => Parts(l, WidthUnitKind.Heads).Concat(Parts(l, WidthUnitKind.Channels)))
            .ToDictionary(p => p.Linear.weight!.Handle, p => ToArray(p.Linear.weight!.grad!));
        model.zero_grad();
        return result;
    }

    /// <summary>The mean over sequences of the squared gradient of each sequence's own loss (diagonal Fisher).</summary>
    public static Dictionary<IntPtr, double[,]> Fisher(LlamaForCausalLM model, IReadOnlyList<int[]> sequences)
    {
        Dictionary<IntPtr, double[,]>? sum = null;
        foreach (var s in sequences)
        {
            var g = Gradients(model, [s]);
            sum ??= g.ToDictionary(p => p.Key, p => new double[p.Value.GetLength(0), p.Value.GetLength(1)]);
            foreach (var (key, grad) in g)
                for (int i = 0; i < grad.GetLength(0); i++)
                    for (int j = 0; j < grad.GetLength(1); j++)
                        sum[key][i, j] += grad[i, j] * grad[i, j] / sequences.Count;
        }

        return sum!;
    }

    /// <summary>The input of every projection (by handle) over all tokens of all sequences, [tokens, in] in double, from a hand-written forward pass.</summary>
    public static Dictionary<IntPtr, List<double[]>> ProjectionInputs(LlamaForCausalLM model, IReadOnlyList<int[]> sequences)
    {
        var result = new Dictionary<IntPtr, List<double[]>>();
        void Add(Linear linear, Tensor x)
        {
            if (!result.TryGetValue(linear.weight!.Handle, out var rows)) result[linear.weight!.Handle] = rows = [];
            var m = ToArray(x.reshape(-1, x.shape[^1]));
            for (int t = 0; t < m.GetLength(0); t++) rows.Add([.. Enumerable.Range(0, m.GetLength(1)).Select(j => m[t, j])]);
        }

        using var noGrad = no_grad();
        foreach (var s in sequences)
        {
            using var scope = NewDisposeScope();
            int n = s.Length;
            using var rope = model.ComputeRotary(n);
            var h = model.Embed(TinyModels.Ids(s));
            foreach (var layer in model.Layers)
            {
                var a = layer.SelfAttn;
                int heads = (int)a.NumHeads, kv = (int)a.NumKeyValueHeads, d = a.HeadDim;
                var x = layer.InputLayerNorm.call(h);
                var q = rope.Apply(a.QProj.call(x).view(1, n, heads, d).transpose(1, 2));
                var k = rope.Apply(a.KProj.call(x).view(1, n, kv, d).transpose(1, 2)).repeat_interleave(heads / kv, dim: 1);
                var v = a.VProj.call(x).view(1, n, kv, d).transpose(1, 2).repeat_interleave(heads / kv, dim: 1);
                var mask = full(n, n, double.NegativeInfinity).triu(1);
                var weights = (q.matmul(k.transpose(2, 3)) / Math.Sqrt(d) + mask).softmax(-1);
                var merged = weights.matmul(v).transpose(1, 2).reshape(1, n, heads * d);
                var mid = h + a.OProj.call(merged);
                var y = layer.PostAttentionLayerNorm.call(mid);
                var inner = nn.functional.silu(layer.Mlp.GateProj.call(y)) * layer.Mlp.UpProj.call(y);
                var next = mid + layer.Mlp.DownProj.call(inner);
                TinyModels.MaxAbsDiff(next, layer.call(h, rope)).Should().BeLessThan(1e-4, "the hand-written layer must match the model's");
                foreach (var p in new[] { a.QProj, a.KProj, a.VProj }) Add(p, x);
                Add(a.OProj, merged);
                foreach (var p in new[] { layer.Mlp.GateProj, layer.Mlp.UpProj }) Add(p, y);
                Add(layer.Mlp.DownProj, inner);
                h = next;
            }
        }

        return result;
    }

    public static void ShouldMatch(this IReadOnlyList<double> actual, IReadOnlyList<double> expected, double relative, string because)
    {
        actual.Should().HaveCount(expected.Count, because);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Count; i++)
            actual[i].Should().BeApproximately(expected[i], relative * Math.Abs(expected[i]) + 1e-5 * scale, $"unit {i} {because}");
    }
}
