using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace Pip.Torch.Streaming;

/// <summary>
/// A temporary file that holds tensors written once and read back once (the layer-boundary hidden states of a gradient
/// pass that would take too much memory), deleted when disposed. Writes go through the page cache, not the process's
/// memory.
/// </summary>
internal sealed class SpillFile : IDisposable
{
    private readonly FileStream _stream;
    private readonly SafeFileHandle _handle;

    public SpillFile(string? directory)
    {
        var folder = directory ?? System.IO.Path.GetTempPath();
        Directory.CreateDirectory(folder);
        Path = System.IO.Path.Combine(folder, $"pip-spill-{Guid.NewGuid():N}.bin");
        _stream = new FileStream(Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.DeleteOnClose);
        _handle = _stream.SafeFileHandle;
    }

    public string Path { get; }

    public long BytesWritten { get; private set; }

    /// <summary>Appends a tensor; returns where it is.</summary>
    public Entry Write(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var cpu = tensor.detach().cpu().contiguous();
        long offset = BytesWritten;
        using (var flat = cpu.reshape(-1))
        {
            long chunk = Math.Max(1, (1L << 30) / flat.ElementSize);
            for (long start = 0; start < flat.numel(); start += chunk)
            {
                using var part = flat.narrow(0, start, Math.Min(chunk, flat.numel() - start));
                RandomAccess.Write(_handle, part.bytes, offset + start * flat.ElementSize);
            }
        }

        BytesWritten += cpu.numel() * cpu.ElementSize;
        return new Entry(offset, tensor.shape, tensor.dtype);
    }

    /// <summary>Reads a tensor back onto <paramref name="device"/>.</summary>
    public Tensor Read(Entry entry, Device device)
    {
        var cpu = empty(entry.Shape, entry.Dtype, CPU);
        try
        {
            using (var flat = cpu.view(-1))
            {
                long chunk = Math.Max(1, (1L << 30) / flat.ElementSize);
                for (long start = 0; start < flat.numel(); start += chunk)
                {
                    using var part = flat.narrow(0, start, Math.Min(chunk, flat.numel() - start));
                    var span = part.bytes;
                    int done = 0;
                    while (done < span.Length)
                    {
                        int read = RandomAccess.Read(_handle, span[done..], entry.Offset + start * flat.ElementSize + done);
                        if (read <= 0) throw new IOException($"The spill file '{Path}' ended early.");
                        done += read;
                    }
                }
            }

            if (device.type == TorchSharp.DeviceType.CPU) return cpu;
            var moved = cpu.to(device);
            cpu.Dispose();
            return moved;
        }
        catch
        {
            cpu.Dispose();
            throw;
        }
    }

    public void Dispose() => _stream.Dispose();

    /// <summary>A tensor's place in the file.</summary>
    internal readonly record struct Entry(long Offset, long[] Shape, ScalarType Dtype);
}
