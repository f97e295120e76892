using System.Buffers.Binary;
using System.Text;

namespace Pip.Core.Tests.Checkpoints;

/// <summary>Builds safetensors files byte by byte, valid or not.</summary>
internal static class SafeTensorsFixtures
{
    public static byte[] Build(string headerJson, byte[] data, ulong? headerLengthOverride = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        return BuildRaw(header, data, headerLengthOverride);
    }

    public static byte[] BuildRaw(byte[] header, byte[] data, ulong? headerLengthOverride = null)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLengthOverride ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    public static string Write(TempFolder folder, string name, string headerJson, byte[] data, ulong? headerLengthOverride = null)
    {
        var path = folder.File(name);
        File.WriteAllBytes(path, Build(headerJson, data, headerLengthOverride));
        return path;
    }

    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
