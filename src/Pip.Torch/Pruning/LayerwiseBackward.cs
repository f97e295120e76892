using Pip.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning;

/// <summary>
/// Gradients of a scalar objective with respect to each decoder layer's parameters, delivered one layer at a time,
/// from the last layer down, as soon as they exist, so that a caller can reduce them and let them go.
/// </summary>
/// <remarks>
/// TorchSharp has no backward hooks, so the backward pass is driven by hand: one forward pass without gradients keeps
/// each layer's input; the head's objective is differentiated with respect to the last hidden state; then each layer
/// is recomputed from its saved input and <c>autograd.grad</c> returns its parameter gradients and the gradient of
/// its input, which is passed down. Peak memory is the weights, the saved layer inputs and ONE layer's activations
/// and gradients, never a full gradient copy of the model. Cost: about one extra forward pass.
/// </remarks>
internal static class LayerwiseBackward
{
    /// <summary>Receives one layer's parameter gradients; they are disposed when the callback returns.</summary>
    /// <param name="layer">Current layer index.</param>
    /// <param name="parameters">The layer's parameters.</param>
    /// <param name="gradients">The gradients, in the order of <paramref name="parameters"/>.</param>
    public delegate void LayerGradients(int layer, IReadOnlyList<Tensor> parameters, IReadOnlyList<Tensor> gradients);

    /// <summary>Runs the forward pass and the layer-by-layer backward pass of <paramref name="objective"/>.</summary>
    /// <param name="model">The model; its weights are not changed and no <c>.grad</c> is left on them.</param>
    /// <param name="inputIds">Token ids [batch, seq] (int64) on the model's device.</param>
    /// <param name="objective">Scalar objective from the logits [batch, seq, vocab].</param>
    /// <param name="onLayer">Called for each layer, last first.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    public static void Run(LlamaForCausalLM model, Tensor inputIds, Func<Tensor, Tensor> objective, LayerGradients onLayer, CancellationToken cancellationToken)
    {
        var layers = model.Layers;
        long batch = inputIds.shape[0], length = inputIds.shape[1];
        using var scope = NewDisposeScope();
        using var rope = model.ComputeRotary(length, batch);
        var inputs = new Tensor[layers.Count];
        Tensor hidden;
        using (no_grad())
        {
            hidden = model.Embed(inputIds);
            for (int l = 0; l < layers.Count; l++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                inputs[l] = hidden;
                hidden = layers[l].call(hidden, rope);
            }
        }

        Tensor upstream;
        using (enable_grad())
        using (var headScope = NewDisposeScope())
        {
            var last = hidden.detach().requires_grad_(true);
            var value = objective(model.LmHead(model.FinalNorm(last)));
            upstream = autograd.grad([value], [last])[0].MoveToOuterDisposeScope();
        }

        for (int l = layers.Count - 1; l >= 0; l--)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var layerScope = NewDisposeScope();
            var parameters = layers[l].parameters().Select(p => (Tensor)p).ToArray();
            IList<Tensor> grads;
            using (enable_grad())
            {
                var input = inputs[l].detach().requires_grad_(true);
                var output = layers[l].call(input, rope);
                grads = autograd.grad([output], [input, .. parameters], [upstream]);
            }

            onLayer(l, parameters, grads.Skip(1).ToArray());
            upstream.Dispose();
            inputs[l].Dispose();
            upstream = grads[0].MoveToOuterDisposeScope();
        }

        upstream.Dispose();
    }

    /// <summary>The norm of order <paramref name="order"/> of a tensor, computed in float32.</summary>
    /// <param name="tensor">Any floating tensor.</param>
    /// <param name="order">1, 2, or positive infinity (any p ≥ 1 works).</param>
    public static double Norm(Tensor tensor, double order)
    {
        using var scope = NewDisposeScope();
        var t = tensor.dtype == ScalarType.Float32 ? tensor : tensor.to_type(ScalarType.Float32);
        return linalg.vector_norm(t, order).item<float>();
    }
}
