using Pip.Checkpoints;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

/// <summary>
/// A deliberately plain, slow reference of the Llama-layout forward pass: double arithmetic, loops, arrays, no torch
/// operation except reading the weights out. Written from the Hugging Face definitions, independent of the model code.
/// </summary>
internal sealed class ScalarLlamaReference
{
    private readonly LlamaConfig _c;
    private readonly Dictionary<string, double[]> _w = new();
    private readonly double[] _invFreq;

    public ScalarLlamaReference(LlamaConfig config, IReadOnlyDictionary<string, Tensor> weights)
    {
        _c = config;
        foreach (var (name, t) in weights)
            _w[name] = t.detach().cpu().to(ScalarType.Float64).contiguous().data<double>().ToArray();
        _invFreq = InverseFrequencies(config);
    }

    /// <summary>inv_freq[i] = theta^(-2i/d), then the llama3 piecewise rule if configured.</summary>
    public static double[] InverseFrequencies(LlamaConfig c)
    {
        var d = c.HeadDim;
        var inv = new double[d / 2];
        for (var i = 0; i < d / 2; i++)
        {
            inv[i] = 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / d);
            if (c.RopeScaling is { RopeType: "llama3" } s)
            {
                var wavelength = 2 * Math.PI / inv[i];
                var highFreqWavelength = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
                var lowFreqWavelength = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
                if (wavelength < highFreqWavelength)
                {
                    // high frequency: unchanged
                }
                else if (wavelength > lowFreqWavelength)
                {
                    inv[i] /= s.Factor;
                }
                else
                {
                    var smooth = (s.OriginalMaxPositionEmbeddings / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                }
            }
        }
        return inv;
    }

    private double[] W(string name) => _w.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"reference needs weight '{name}'");

    private double[]? Bias(string name) => _w.TryGetValue(name, out var v) ? v : null;

    /// <summary>y = W x (+ b) with W stored row-major [out, in].</summary>
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

    private double[] RmsNorm(double[] x, double[] weight)
    {
        double ms = 0;
        foreach (var v in x) ms += v * v;
        ms /= x.Length;
        var r = 1.0 / Math.Sqrt(ms + _c.RmsNormEps);
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = weight[i] * x[i] * r;
        return y;
    }

    /// <summary>Rotate-half RoPE on one head vector: pairs (i, i + d/2).</summary>
    private double[] Rope(double[] x, int offset, long position)
    {
        var d = _c.HeadDim;
        var half = d / 2;
        var y = new double[d];
        for (var i = 0; i < half; i++)
        {
            var angle = position * _invFreq[i];
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            var a = x[offset + i];
            var b = x[offset + half + i];
            y[i] = a * cos - b * sin;
            y[half + i] = b * cos + a * sin;
        }
        return y;
    }

    /// <summary>Logits [seq][vocab] of one sequence; positions default to 0..seq-1.</summary>
    public double[][] Logits(IReadOnlyList<int> tokens, IReadOnlyList<long>? positions = null)
    {
        int n = tokens.Count, hidden = _c.HiddenSize, d = _c.HeadDim;
        positions ??= Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        var embed = W("model.embed_tokens.weight");
        var h = new double[n][];
        for (var t = 0; t < n; t++) h[t] = embed.AsSpan(tokens[t] * hidden, hidden).ToArray();

        for (var l = 0; l < _c.NumHiddenLayers; l++)
        {
            var p = $"model.layers.{l}.";
            var heads = W(p + "self_attn.q_proj.weight").Length / hidden / d;
            var kvHeads = W(p + "self_attn.k_proj.weight").Length / hidden / d;
            var group = heads / kvHeads;
            var q = new double[n][][];
            var k = new double[n][][];
            var v = new double[n][];
            for (var t = 0; t < n; t++)
            {
                var x = RmsNorm(h[t], W(p + "input_layernorm.weight"));
                var qa = MatVec(W(p + "self_attn.q_proj.weight"), Bias(p + "self_attn.q_proj.bias"), x);
                var ka = MatVec(W(p + "self_attn.k_proj.weight"), Bias(p + "self_attn.k_proj.bias"), x);
                v[t] = MatVec(W(p + "self_attn.v_proj.weight"), Bias(p + "self_attn.v_proj.bias"), x);
                q[t] = Enumerable.Range(0, heads).Select(hh => Rope(qa, hh * d, positions[t])).ToArray();
                k[t] = Enumerable.Range(0, kvHeads).Select(g => Rope(ka, g * d, positions[t])).ToArray();
            }
            var attnOut = new double[n][];
            for (var t = 0; t < n; t++)
            {
                var concat = new double[heads * d];
                for (var hh = 0; hh < heads; hh++)
                {
                    var g = hh / group;
                    var scores = new double[t + 1];
                    for (var j = 0; j <= t; j++)
                    {
                        double s = 0;
                        for (var i = 0; i < d; i++) s += q[t][hh][i] * k[j][g][i];
                        scores[j] = s / Math.Sqrt(d);
                    }
                    var max = scores.Max();
                    var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    var sum = weights.Sum();
                    for (var j = 0; j <= t; j++)
                        for (var i = 0; i < d; i++)
                            concat[hh * d + i] += weights[j] / sum * v[j][g * d + i];
                }
                attnOut[t] = MatVec(W(p + "self_attn.o_proj.weight"), Bias(p + "self_attn.o_proj.bias"), concat);
            }
            for (var t = 0; t < n; t++)
            {
                for (var i = 0; i < hidden; i++) h[t][i] += attnOut[t][i];
                var x = RmsNorm(h[t], W(p + "post_attention_layernorm.weight"));
                var gate = MatVec(W(p + "mlp.gate_proj.weight"), Bias(p + "mlp.gate_proj.bias"), x);
                var up = MatVec(W(p + "mlp.up_proj.weight"), Bias(p + "mlp.up_proj.bias"), x);
                var act = new double[gate.Length];
                for (var i = 0; i < act.Length; i++) act[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
                var down = MatVec(W(p + "mlp.down_proj.weight"), Bias(p + "mlp.down_proj.bias"), act);
                for (var i = 0; i < hidden; i++) h[t][i] += down[i];
            }
        }

        var head = _c.TieWordEmbeddings ? embed : W("lm_head.weight");
        var logits = new double[n][];
        for (var t = 0; t < n; t++) logits[t] = MatVec(head, null, RmsNorm(h[t], W("model.norm.weight")));
        return logits;
    }

    /// <summary>Sum of -log softmax(logits[t-1])[tokens[t]] over t in [from, tokens.Count), for one window.</summary>
    public double WindowNllSum(IReadOnlyList<int> window, int scoredFromInWindow)
    {
        var logits = Logits(window);
        double sum = 0;
        for (var t = scoredFromInWindow; t < window.Count; t++)
        {
            var row = logits[t - 1];
            var max = row.Max();
            var logSumExp = max + Math.Log(row.Sum(x => Math.Exp(x - max)));
            sum += logSumExp - row[window[t]];
        }
        return sum;
    }
}
