using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Training.Lora;

/// <summary>
/// One LoRA adapter on one <see cref="Linear"/> of a model: <c>y = W·x + b + (α/r)·B·A·dropout(x)</c>, with A
/// [r, in] (Kaiming-uniform) and B [out, r] (zeros), so the adapted layer starts as the base layer.
/// </summary>
/// <remarks>
/// <para>How it is attached: A and B are <see cref="Linear"/> modules without bias registered as children
/// <c>lora_A</c> and <c>lora_B</c> of the base linear, and the update is added by a forward hook on it. The base
/// module is not replaced, so its parameters keep their Hugging Face names (<c>….q_proj.weight</c>) and the
/// model's code is unchanged; the adapter parameters are named <c>….q_proj.lora_A.weight</c> and
/// <c>….q_proj.lora_B.weight</c>, the names PEFT saves. The hook only runs through <c>Module.call</c>, which every
/// projection of the model uses.</para>
/// <para>A and B are float32 (master weights) on the base weight's device, whatever the base type; the update is
/// computed in float32 and added in the output's type. Dropout is active while the base linear is in training mode.</para>
/// <para>Created by <see cref="LoraAdapters.Attach"/>, which owns it (merge, remove or dispose the whole set).</para>
/// </remarks>
public sealed class LoraAdapter
{
    /// <summary>The child name of A under the adapted linear: <c>lora_A</c>.</summary>
    public const string AName = "lora_A";

    /// <summary>The child name of B under the adapted linear: <c>lora_B</c>.</summary>
    public const string BName = "lora_B";

    private nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover? _hook;
    private bool _disposed;

    internal LoraAdapter(string name, Linear target, int rank, double alpha, double dropout, Generator generator)
    {
        Name = name;
        Target = target;
        Rank = rank;
        Alpha = alpha;
        Dropout = dropout;
        var weight = target.weight;
        InFeatures = weight.shape[1];
        OutFeatures = weight.shape[0];
        var device = weight.device;

        // PEFT's default: kaiming_uniform_(A, a=√5), i.e. U(−1/√in, 1/√in); drawn on the CPU from the seeded generator.
        double bound = 1.0 / Math.Sqrt(InFeatures);
        using (no_grad())
        {
            using var uniform = rand([rank, InFeatures], dtype: ScalarType.Float32, device: CPU, generator: generator);
            using var scaled = uniform.mul(2 * bound).sub_(bound);
            A = nn.Linear(new Parameter(scaled.to(device), requires_grad: true), null);
            B = nn.Linear(new Parameter(zeros(OutFeatures, rank, dtype: ScalarType.Float32, device: device), requires_grad: true), null);
        }

        target.register_module(AName, A);
        target.register_module(BName, B);
        _hook = target.register_forward_hook(AddUpdate);
    }

    /// <summary>The adapted linear's Hugging Face module name, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string Name { get; }

    /// <summary>The adapted (base) linear.</summary>
    public Linear Target { get; }

    /// <summary>A, the down projection [r, in], Hugging Face name <c>{Name}.lora_A.weight</c>.</summary>
    public Linear A { get; }

    /// <summary>B, the up projection [out, r] (zeros at first), Hugging Face name <c>{Name}.lora_B.weight</c>.</summary>
    public Linear B { get; }

    /// <summary>The rank r.</summary>
    public int Rank { get; }

    /// <summary>α.</summary>
    public double Alpha { get; }

    /// <summary>The scale α / r of B·A.</summary>
    public double Scale => Alpha / Rank;

    /// <summary>The dropout probability on the adapter's input while training.</summary>
    public double Dropout { get; }

    /// <summary>The base linear's input width.</summary>
    public long InFeatures { get; }

    /// <summary>The base linear's output width.</summary>
    public long OutFeatures { get; }

    /// <summary>Whether the adapter is still attached (not merged, removed or disposed).</summary>
    public bool IsAttached => _hook is not null;

    /// <summary>The number of adapter parameters: r · (in + out).</summary>
    public long ParameterCount => Rank * (InFeatures + OutFeatures);

    /// <summary>The weight update (α/r)·B·A [out, in] in float32, without gradient.</summary>
    /// <returns>A new tensor; dispose it.</returns>
    /// <exception cref="ObjectDisposedException">The adapter was disposed.</exception>
    public Tensor Delta()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var noGrad = no_grad();
        using var product = B.weight.matmul(A.weight);
        return product.mul(Scale);
    }

    private Tensor AddUpdate(nn.Module<Tensor, Tensor> module, Tensor input, Tensor output)
    {
        using var scope = NewDisposeScope();
        var x = input.dtype == ScalarType.Float32 ? input : input.to(ScalarType.Float32);
        if (Dropout > 0 && Target.training) x = nn.functional.dropout(x, Dropout, training: true);
        var update = B.call(A.call(x)).mul(Scale);
        if (update.dtype != output.dtype) update = update.to(output.dtype);
        return output.add(update).MoveToOuterDisposeScope();
    }

    /// <summary>Folds the update into the base weight (W ← W + (α/r)·B·A, under no_grad) and detaches.</summary>
    internal void Merge()
    {
        using (var delta = Delta())
        using (no_grad())
        {
            var weight = Target.weight;
            using var cast = delta.to(weight.dtype);
            weight.add_(cast);
        }
        Detach();
    }

    /// <summary>Removes the hook and the children from the base linear and disposes A and B; the base is left as it is.</summary>
    internal void Detach()
    {
        if (_hook is null) return;
        _hook.remove();
        _hook = null;
        // register_module with null unregisters the child.
        Target.register_module(AName, null!);
        Target.register_module(BName, null!);
        A.Dispose();
        B.Dispose();
        _disposed = true;
    }
}
