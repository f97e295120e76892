using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// Multi-head self-attention of an OPT decoder layer (Hugging Face <c>self_attn</c>): <c>q_proj</c>, <c>k_proj</c>,
/// <c>v_proj</c>, <c>out_proj</c> (with biases when <c>enable_bias</c>), no rotary embedding. As in transformers, the
/// queries are multiplied by head_dim^-0.5 right after <c>q_proj</c> (bias included), and the softmax is taken in float32.
/// </summary>
/// <remarks>The number of heads is read from the shape of <c>q_proj</c> at every call, so a layer whose heads were pruned keeps working.</remarks>
public sealed class OptAttention : nn.Module<Tensor, Tensor?, LayerKvCache?, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    // Declared in transformers' order (k, v, q, out), which is the registration and save order.
    private Linear k_proj;
    private Linear v_proj;
    private Linear q_proj;
    private Linear out_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the block with zero-filled parameters.</summary>
    /// <param name="config">The model configuration (hidden size, head width, biases).</param>
    /// <param name="numHeads">This layer's number of heads.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public OptAttention(OptConfig config, int numHeads, ScalarType dtype, Device? device = null) : base(nameof(OptAttention))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numHeads);
        HeadDim = config.HeadDim;
        long width = (long)numHeads * config.HeadDim;
        k_proj = ModelParts.Linear(config.HiddenSize, width, config.EnableBias, dtype, device);
        v_proj = ModelParts.Linear(config.HiddenSize, width, config.EnableBias, dtype, device);
        q_proj = ModelParts.Linear(config.HiddenSize, width, config.EnableBias, dtype, device);
        out_proj = ModelParts.Linear(width, config.HiddenSize, config.EnableBias, dtype, device);
        RegisterComponents();
    }

    /// <summary>The width of one head.</summary>
    public int HeadDim { get; }

    /// <summary>The current number of heads (from the shape of <c>q_proj</c>).</summary>
    public long NumHeads => q_proj.weight!.shape[0] / HeadDim;

    /// <summary>The query projection, Hugging Face name <c>q_proj</c>.</summary>
    public Linear QProj => q_proj;

    /// <summary>The key projection, Hugging Face name <c>k_proj</c>.</summary>
    public Linear KProj => k_proj;

    /// <summary>The value projection, Hugging Face name <c>v_proj</c>.</summary>
    public Linear VProj => v_proj;

    /// <summary>The output projection, Hugging Face name <c>out_proj</c>.</summary>
    public Linear OutProj => out_proj;

    /// <summary>
    /// Keeps only the given heads (in the given order): their q/k/v rows and bias entries and their out_proj input
    /// columns; out_proj's bias is kept whole. The projections are replaced by new, smaller modules registered under
    /// the same names; the old ones are disposed.
    /// </summary>
    /// <param name="keptHeads">Distinct head indices in the current numbering, at least one, checked by the caller.</param>
    internal void KeepHeads(IReadOnlyList<int> keptHeads)
    {
        var rows = new List<long>();
        foreach (var h in keptHeads)
            for (long d = 0; d < HeadDim; d++) rows.Add(h * (long)HeadDim + d);
        using var noGrad = no_grad();
        using var index = tensor(rows.ToArray(), device: q_proj.weight!.device);
        var (oldK, oldV, oldQ, oldO) = (k_proj, v_proj, q_proj, out_proj);
        k_proj = ModelParts.SelectRows(oldK, index);
        v_proj = ModelParts.SelectRows(oldV, index);
        q_proj = ModelParts.SelectRows(oldQ, index);
        out_proj = ModelParts.SelectColumns(oldO, index);
        ClearModules();
        register_module("k_proj", k_proj);
        register_module("v_proj", v_proj);
        register_module("q_proj", q_proj);
        register_module("out_proj", out_proj);
        oldK.Dispose();
        oldV.Dispose();
        oldQ.Dispose();
        oldO.Dispose();
    }

    /// <summary>Runs attention.</summary>
    /// <param name="hidden">The (normalised, for pre-norm models) hidden states [batch, seq, hidden].</param>
    /// <param name="mask">
    /// An additive mask broadcastable to [batch, heads, seq, cached + seq] (0 where attending is allowed, a large
    /// negative number elsewhere) that already holds causality; or null for plain causal attention.
    /// </param>
    /// <param name="cache">This layer's key/value cache, or null.</param>
    /// <returns>The attention output [batch, seq, hidden].</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask, LayerKvCache? cache)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        using var scope = NewDisposeScope();
        var batch = hidden.shape[0];
        var seq = hidden.shape[1];
        var scaling = 1.0 / Math.Sqrt(HeadDim);
        var q = (q_proj.call(hidden) * scaling).view(batch, seq, -1, HeadDim).transpose(1, 2);
        var k = k_proj.call(hidden).view(batch, seq, -1, HeadDim).transpose(1, 2);
        var v = v_proj.call(hidden).view(batch, seq, -1, HeadDim).transpose(1, 2);
        long past = 0;
        if (cache is not null)
        {
            past = cache.Length;
            (k, v) = cache.Append(k, v);
        }

        var scores = q.matmul(k.transpose(-1, -2));
        if (mask is not null)
            scores = scores + mask;
        else if (seq > 1)
            scores = scores + OptDecoder.CausalMask(seq, past, scores.dtype, scores.device);
        var probs = scores.softmax(-1, ScalarType.Float32).to(q.dtype);
        var merged = probs.matmul(v).transpose(1, 2).reshape(batch, seq, -1);
        return out_proj.call(merged).MoveToOuterDisposeScope();
    }
}
