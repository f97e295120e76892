using Pip.Checkpoints;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

/// <summary>
/// A deliberately plain, slow reference of the OPT forward pass (transformers' <c>OPTForCausalLM</c>, eager
/// attention): double arithmetic, loops, arrays; written from the Hugging Face definitions, independent of the model code.
/// </summary>
internal sealed class ScalarOptReference
{
    private readonly OptConfig _c;
    private readonly Dictionary<string, double[]> _w = new();

    public ScalarOptReference(OptConfig config, IReadOnlyDictionary<string, Tensor> weights)
    {
        _c = config;
        foreach (var (name, t) in weights)
            _w[name] = t.detach().cpu().to(ScalarType.Float64).contiguous().data<double>().ToArray();
    }

    private double[] W(string name) => _w.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"reference needs weight '{name}'");

    private double[]? Optional(string name) => _w.TryGetValue(name, out var v) ? v : null;

    private static double[] MatVec(double[] w, double[]? b, double[] x)
    {
        var outDim = w.Length / x.Length;
        var y = new double[outDim];
        for (var o = 0; o < outDim; o++)
        {
            double s = b?[o] ?? 0;
            for (var i = 0; i < x.Length; i++) s += w[o * x.Length + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    /// <summary>LayerNorm with biased variance and eps 1e-5; weight and bias only when present.</summary>
    private double[] LayerNorm(double[] x, string prefix)
    {
        double mean = x.Average();
        double variance = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
        var r = 1.0 / Math.Sqrt(variance + 1e-5);
        var weight = Optional(prefix + ".weight");
        var bias = Optional(prefix + ".bias");
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = (x[i] - mean) * r * (weight?[i] ?? 1) + (bias?[i] ?? 0);
        return y;
    }

    private double Activation(double x) => _c.ActivationFunction switch
    {
        "relu" => Math.Max(0, x),
        "silu" => x / (1 + Math.Exp(-x)),
        _ => throw new NotSupportedException(_c.ActivationFunction),
    };

    /// <summary>Logits [seq][vocab] of one unpadded sequence at positions 0 … seq-1.</summary>
    public double[][] Logits(IReadOnlyList<int> tokens)
    {
        int n = tokens.Count, hidden = _c.HiddenSize, word = _c.WordEmbedProjDim, d = _c.HeadDim;
        const string D = "model.decoder.";
        var embed = W(D + "embed_tokens.weight");
        var positions = W(D + "embed_positions.weight");
        var h = new double[n][];
        for (var t = 0; t < n; t++)
        {
            var e = embed.AsSpan(tokens[t] * word, word).ToArray();
            if (Optional(D + "project_in.weight") is { } projectIn) e = MatVec(projectIn, null, e);
            h[t] = new double[hidden];
            for (var i = 0; i < hidden; i++) h[t][i] = e[i] + positions[(t + 2) * hidden + i];
        }

        for (var l = 0; l < _c.NumHiddenLayers; l++)
        {
            var p = $"{D}layers.{l}.";
            var heads = W(p + "self_attn.q_proj.weight").Length / hidden / d;
            var x = _c.DoLayerNormBefore ? h.Select(r => LayerNorm(r, p + "self_attn_layer_norm")).ToArray() : h;
            var q = new double[n][];
            var k = new double[n][];
            var v = new double[n][];
            for (var t = 0; t < n; t++)
            {
                q[t] = MatVec(W(p + "self_attn.q_proj.weight"), Optional(p + "self_attn.q_proj.bias"), x[t]).Select(z => z / Math.Sqrt(d)).ToArray();
                k[t] = MatVec(W(p + "self_attn.k_proj.weight"), Optional(p + "self_attn.k_proj.bias"), x[t]);
                v[t] = MatVec(W(p + "self_attn.v_proj.weight"), Optional(p + "self_attn.v_proj.bias"), x[t]);
            }
            var next = new double[n][];
            for (var t = 0; t < n; t++)
            {
                var concat = new double[heads * d];
                for (var hh = 0; hh < heads; hh++)
                {
                    var scores = new double[t + 1];
                    for (var j = 0; j <= t; j++)
                        for (var i = 0; i < d; i++) scores[j] += q[t][hh * d + i] * k[j][hh * d + i];
                    var max = scores.Max();
                    var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    var sum = weights.Sum();
                    for (var j = 0; j <= t; j++)
                        for (var i = 0; i < d; i++) concat[hh * d + i] += weights[j] / sum * v[j][hh * d + i];
                }
                var attn = MatVec(W(p + "self_attn.out_proj.weight"), Optional(p + "self_attn.out_proj.bias"), concat);
                var r = h[t].Select((z, i) => z + attn[i]).ToArray();
                if (!_c.DoLayerNormBefore) r = LayerNorm(r, p + "self_attn_layer_norm");
                var y = _c.DoLayerNormBefore ? LayerNorm(r, p + "final_layer_norm") : r;
                var up = MatVec(W(p + "fc1.weight"), Optional(p + "fc1.bias"), y).Select(Activation).ToArray();
                var down = MatVec(W(p + "fc2.weight"), Optional(p + "fc2.bias"), up);
                var o = r.Select((z, i) => z + down[i]).ToArray();
                next[t] = _c.DoLayerNormBefore ? o : LayerNorm(o, p + "final_layer_norm");
            }
            h = next;
        }

        var head = _c.TieWordEmbeddings ? embed : W("lm_head.weight");
        var logits = new double[n][];
        for (var t = 0; t < n; t++)
        {
            var z = _c.HasFinalLayerNorm ? LayerNorm(h[t], D + "final_layer_norm") : h[t];
            if (Optional(D + "project_out.weight") is { } projectOut) z = MatVec(projectOut, null, z);
            logits[t] = MatVec(head, null, z);
        }
        return logits;
    }
}
