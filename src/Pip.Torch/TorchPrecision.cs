using System.Collections.Concurrent;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>Chooses the type to compute in on a device.</summary>
/// <remarks>
/// bfloat16 halves memory traffic and is about twice as fast as float32 on CPUs with native bf16 matrix instructions
/// (AVX512-BF16, AMX) and on GPUs. On CPUs without them (AVX2-only machines, for example) libtorch falls back to a
/// scalar bf16 kernel that is hundreds of times SLOWER than float32. <see cref="IsFast"/> measures it once per device
/// and process with a tiny matrix product (a few milliseconds), so Pip never picks a type that cripples the machine.
/// Thread-safe.
/// </remarks>
public static class TorchPrecision
{
    private static readonly ConcurrentDictionary<(string Device, ScalarType Type), bool> Fast = new();

    /// <summary>Whether matrix products in <paramref name="type"/> run at least half as fast as in float32 on <paramref name="device"/>.</summary>
    /// <param name="type">A floating type.</param>
    /// <param name="device">The device, or null for the CPU.</param>
    public static bool IsFast(ScalarType type, Device? device = null)
    {
        device ??= CPU;
        if (type == ScalarType.Float32 || device.type == DeviceType.CUDA) return true;
        return Fast.GetOrAdd((device.ToString(), type), key => Measure(type, device));
    }

    /// <summary>
    /// The type to compute in: <paramref name="requested"/> when given; otherwise <paramref name="stored"/> (the
    /// checkpoint's type) when it is fast on the device, else float32.
    /// </summary>
    /// <param name="requested">An explicit choice, or null for automatic.</param>
    /// <param name="stored">The type the weights are stored in.</param>
    /// <param name="device">The device, or null for the CPU.</param>
    public static ScalarType Resolve(ScalarType? requested, ScalarType stored, Device? device = null) =>
        requested ?? (IsFast(stored, device) ? stored : ScalarType.Float32);

    private static bool Measure(ScalarType type, Device device)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a32 = ones(64, 256, device: device);
        var b32 = ones(256, 256, device: device);
        var a = a32.to_type(type);
        var b = b32.to_type(type);
        a32.matmul(b32);
        a.matmul(b); // first calls pay one-time costs
        double reference = Time(() => a32.matmul(b32));
        double candidate = Time(() => a.matmul(b));
        return candidate <= 2 * reference;
    }

    private static double Time(Action action)
    {
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
        }

        return best;
    }
}
