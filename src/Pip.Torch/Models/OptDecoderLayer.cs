using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// One OPT decoder layer (Hugging Face <c>model.decoder.layers.N</c>). Pre-norm (<c>do_layer_norm_before</c>):
/// <c>h = x + self_attn(self_attn_layer_norm(x)); out = h + fc2(act(fc1(final_layer_norm(h))))</c>. Post-norm
/// (opt-350m): <c>h = self_attn_layer_norm(x + self_attn(x)); out = final_layer_norm(h + fc2(act(fc1(h))))</c>.
/// </summary>
public sealed class OptDecoderLayer : nn.Module<Tensor, Tensor?, LayerKvCache?, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    private readonly OptAttention self_attn;
    private readonly LayerNorm self_attn_layer_norm;
    private Linear fc1;
    private Linear fc2;
    private readonly LayerNorm final_layer_norm;
#pragma warning restore IDE1006
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>Creates a layer with zero-filled projections and identity LayerNorms.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="shape">This layer's head count and FFN width.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public OptDecoderLayer(OptConfig config, OptLayerShape shape, ScalarType dtype, Device? device = null) : base(nameof(OptDecoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(shape);
        DoLayerNormBefore = config.DoLayerNormBefore;
        _activation = Activation(config.ActivationFunction);
        self_attn = new OptAttention(config, shape.NumAttentionHeads, dtype, device);
        self_attn_layer_norm = OptDecoder.LayerNorm(config, dtype, device);
        fc1 = ModelParts.Linear(config.HiddenSize, shape.FfnDim, config.EnableBias, dtype, device);
        fc2 = ModelParts.Linear(shape.FfnDim, config.HiddenSize, config.EnableBias, dtype, device);
        final_layer_norm = OptDecoder.LayerNorm(config, dtype, device);
        RegisterComponents();
    }

    /// <summary>Whether the LayerNorms come before the sub-layers (pre-norm) or after the residual sums (post-norm).</summary>
    public bool DoLayerNormBefore { get; }

    /// <summary>The attention block, Hugging Face name <c>self_attn</c>.</summary>
    public OptAttention SelfAttn => self_attn;

    /// <summary>The LayerNorm of the attention sub-layer, Hugging Face name <c>self_attn_layer_norm</c>.</summary>
    public LayerNorm SelfAttnLayerNorm => self_attn_layer_norm;

    /// <summary>The first MLP projection, Hugging Face name <c>fc1</c>.</summary>
    public Linear Fc1 => fc1;

    /// <summary>The second MLP projection, Hugging Face name <c>fc2</c>.</summary>
    public Linear Fc2 => fc2;

    /// <summary>The LayerNorm of the MLP sub-layer, Hugging Face name <c>final_layer_norm</c>.</summary>
    public LayerNorm FinalLayerNorm => final_layer_norm;

    /// <summary>The current FFN width (rows of <c>fc1</c>).</summary>
    public long FfnDim => fc1.weight!.shape[0];

    /// <summary>The current shape of this layer, read from its weights (it follows width pruning).</summary>
    public OptLayerShape Shape => new((int)self_attn.NumHeads, (int)FfnDim);

    /// <summary>The number of parameters of this layer.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>
    /// Keeps only the given FFN channels (in the given order): their fc1 rows and bias entries and their fc2 columns;
    /// fc2's bias is kept whole. The projections are replaced by new modules under the same names; the old ones are disposed.
    /// </summary>
    /// <param name="keptChannels">Distinct channel indices, at least one, checked by the caller.</param>
    internal void KeepChannels(IReadOnlyList<int> keptChannels)
    {
        using var noGrad = no_grad();
        using var index = tensor(keptChannels.Select(c => (long)c).ToArray(), device: fc1.weight!.device);
        var (oldFc1, oldFc2) = (fc1, fc2);
        fc1 = ModelParts.SelectRows(oldFc1, index);
        fc2 = ModelParts.SelectColumns(oldFc2, index);
        ClearModules();
        register_module("self_attn", self_attn);
        register_module("self_attn_layer_norm", self_attn_layer_norm);
        register_module("fc1", fc1);
        register_module("fc2", fc2);
        register_module("final_layer_norm", final_layer_norm);
        oldFc1.Dispose();
        oldFc2.Dispose();
    }

    /// <summary>Runs the layer.</summary>
    /// <param name="hidden">The layer input [batch, seq, hidden].</param>
    /// <param name="mask">An additive attention mask (see <see cref="OptAttention.forward"/>), or null for plain causal attention.</param>
    /// <param name="cache">This layer's key/value cache, or null.</param>
    /// <returns>The layer output [batch, seq, hidden].</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask, LayerKvCache? cache)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        using var scope = NewDisposeScope();
        Tensor h;
        if (DoLayerNormBefore)
        {
            h = hidden + self_attn.call(self_attn_layer_norm.call(hidden), mask, cache);
            h = h + fc2.call(_activation(fc1.call(final_layer_norm.call(h))));
        }
        else
        {
            h = self_attn_layer_norm.call(hidden + self_attn.call(hidden, mask, cache));
            h = final_layer_norm.call(h + fc2.call(_activation(fc1.call(h))));
        }
        return h.MoveToOuterDisposeScope();
    }

    private static Func<Tensor, Tensor> Activation(string name) => name switch
    {
        "relu" => x => nn.functional.relu(x),
        "gelu" => x => nn.functional.gelu(x),
        "silu" => x => nn.functional.silu(x),
        _ => throw new NotSupportedException($"The activation '{name}' is not supported (relu, gelu, silu)."),
    };
}
