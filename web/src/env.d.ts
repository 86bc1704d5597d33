/// <reference types="vite/client" />

interface ImportMetaEnv {
  readonly VITE_ALLOW_NO_AUTH?: string
  readonly VITE_APP_VERSION?: string
}

interface ImportMeta {
  readonly env: ImportMetaEnv
}
