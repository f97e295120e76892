using System.Collections.Concurrent;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>Chooses the type to compute in on a device.</summary>
/// <remarks>
/// bfloat16 halves memory traffic and is about twice as fast as float32 on CPUs with native bf16 matrix instructions
/// (AVX512-BF16, AMX) and on GPUs. On CPUs without them (AVX2-only machines, for example) libtorch falls back to a
/// scalar bf16 kernel that is hundreds of times SLOWER than float32. <see cref="IsFast"/> decides once per device and
/// process: for bf16 on a Linux CPU from the instruction-set flags, otherwise with a tiny timed matrix product (a few
/// milliseconds), so Pip never picks a type that cripples the machine.
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
        return Fast.GetOrAdd((device.ToString(), type), key => type == ScalarType.BFloat16 && CpuBFloat16Support() is { } known ? known : Measure(type, device));
    }

    /// <summary>
    /// On Linux, whether the CPU has bf16 matrix instructions, read from <c>/proc/cpuinfo</c>: x86 AVX512-BF16, AMX-BF16 or
    /// AVX-512 (oneDNN's bf16 kernels need at least AVX512BW), Arm's bf16 extension. Null where unknown; then a timing
    /// probe decides, which a busy machine can mislead.
    /// </summary>
    internal static bool? CpuBFloat16Support()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!OperatingSystem.IsLinux() || !File.Exists(cpuinfo)) return null;
        try
        {
            foreach (string line in File.ReadLines(cpuinfo))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal) && !line.StartsWith("Features", StringComparison.Ordinal)) continue;
                var flags = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
                return flags.Contains("avx512_bf16") || flags.Contains("amx_bf16") || flags.Contains("avx512bw") || flags.Contains("bf16");
            }
        }
        catch (IOException)
        {
        }

        return null;
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
        // 256³ is big enough that thread wake-up noise does not decide, small enough to cost milliseconds even when slow.
        var a32 = ones(256, 256, device: device);
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
        for (int i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
        }

        return best;
    }
}
